"""The hello world example."""
