"""Templates: awaited rendering, Flask's sync API on the async environment, signals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import flask
import pytest

import aioflask
from aioflask import Flask


@pytest.fixture
def app() -> Flask:
    app = Flask(__name__)

    @app.context_processor
    async def where() -> dict[str, str]:
        await asyncio.sleep(0)
        return {"where": "aioflask"}

    return app


async def test_await_render_template(app: Flask) -> None:
    @app.get("/")
    async def index() -> str:
        return await aioflask.render_template("hello.html", name="World")

    response = await app.test_client().get("/")
    assert response.text == "<p>Hello World from aioflask</p>"


async def test_await_render_template_string(app: Flask) -> None:
    @app.get("/")
    async def index() -> str:
        return await aioflask.render_template_string("{{ 6 * 7 }} {{ where }}")

    assert (await app.test_client().get("/")).text == "42 aioflask"


async def test_templates_may_call_async_functions(app: Flask) -> None:
    async def lookup(key: str) -> str:
        await asyncio.sleep(0.01)
        return key.upper()

    @app.get("/")
    async def index() -> str:
        return await aioflask.render_template_string(
            "{{ lookup('a') }}-{{ lookup('b') }}", lookup=lookup
        )

    assert (await app.test_client().get("/")).text == "A-B"


async def test_flask_sync_render_template_works_inside_a_request(app: Flask) -> None:
    """Extensions call flask.render_template; it must work on the async env."""

    async def lookup() -> str:
        return "awaited"

    @app.get("/sync")
    def sync_view() -> str:
        return flask.render_template_string("<p>{{ where }} {{ lookup() }}</p>", lookup=lookup)

    @app.get("/async")
    async def async_view() -> str:
        # A sync helper (as an extension would have) called from an async view
        # runs in the view's coroutine, not in the bridge: it needs run_sync.
        return await aioflask.run_sync(flask.render_template_string, "{{ where }}!")

    client = app.test_client()
    assert (await client.get("/sync")).text == "<p>aioflask awaited</p>"
    assert (await client.get("/async")).text == "aioflask!"


def test_flask_sync_render_template_works_outside_a_request(app: Flask) -> None:
    """CLI commands and scripts render with no loop running (a private loop)."""
    with app.app_context():
        assert flask.render_template("hello.html", name="cli") == "<p>Hello cli from aioflask</p>"
        assert "".join(flask.stream_template_string("{{ 1 + 1 }}")) == "2"


async def test_signals_fire(app: Flask) -> None:
    seen: list[tuple[str, str]] = []

    async def before(sender: Flask, template: object, context: dict[str, object]) -> None:
        seen.append(("before", context["name"]))  # type: ignore[arg-type]

    def rendered(sender: Flask, template: object, context: dict[str, object]) -> None:
        seen.append(("rendered", context["name"]))  # type: ignore[arg-type]

    @app.get("/")
    async def index() -> str:
        return await aioflask.render_template("hello.html", name="sig")

    with (
        flask.before_render_template.connected_to(before, app),
        flask.template_rendered.connected_to(rendered, app),
    ):
        assert (await app.test_client().get("/")).status_code == 200
    assert seen == [("before", "sig"), ("rendered", "sig")]


async def test_stream_template_is_an_async_iterator_and_a_streaming_body(app: Flask) -> None:
    produced: list[str] = []

    async def row(i: int) -> str:
        await asyncio.sleep(0)
        produced.append(str(i))
        return f"row{i}"

    @app.get("/")
    async def index() -> object:
        stream = await aioflask.stream_template("rows.html", rows=[1, 2, 3], row=row)
        assert hasattr(stream, "__aiter__")
        return stream

    @app.get("/string")
    async def string() -> object:
        return await aioflask.stream_template_string(
            "{% for i in range(3) %}{{ row(i) }}|{{ request.path }};{% endfor %}", row=row
        )

    client = app.test_client()
    response = await client.get("/")
    assert response.text == "<li>1</li>\n<li>2</li>\n<li>3</li>\n"
    response = await client.get("/string")
    # The request context is kept while the stream renders.
    assert response.text == "row0|/string;row1|/string;row2|/string;"


async def test_stream_template_arrives_chunk_by_chunk(app: Flask) -> None:
    release = asyncio.Event()

    async def gate() -> str:
        await release.wait()
        return "second"

    @app.get("/")
    async def index() -> object:
        return await aioflask.stream_template_string(
            "first{% for _ in [1] %}{{ gate() }}{% endfor %}", gate=gate
        )

    async with app.test_client().stream("GET", "/") as response:
        chunks = response.aiter_bytes()
        assert await chunks.__anext__() == b"first"
        release.set()
        assert b"".join([c async for c in chunks]) == b"second"


async def test_get_template_attribute_returns_the_macro_as_flask_does(app: Flask) -> None:
    @app.get("/")
    def index() -> str:
        shout = flask.get_template_attribute("macros.html", "shout")
        return str(shout("hey"))

    assert (await app.test_client().get("/")).text == "HEY!"


async def test_sync_environment_can_be_chosen() -> None:
    app = Flask(__name__)
    app.jinja_options = {"enable_async": False}

    @app.get("/")
    def index() -> str:
        return flask.render_template_string("{{ 1 + 2 }}")

    assert not app.jinja_env.is_async
    assert (await app.test_client().get("/")).text == "3"


async def test_jinja_async_mode_can_be_chosen() -> None:
    app = Flask(__name__)
    app.jinja_options = {"enable_async": True}

    async def lookup(key: str) -> str:
        await asyncio.sleep(0)
        return key.upper()

    @app.get("/")
    async def index() -> str:
        return await aioflask.render_template_string("{{ lookup('a') }}", lookup=lookup)

    @app.get("/sync")
    def sync() -> str:
        shout = flask.get_template_attribute("macros.html", "shout")
        page = flask.render_template_string("{{ lookup('b') }}", lookup=lookup)
        return page + str(aioflask.await_(shout("hey")))

    assert app.jinja_env.is_async
    assert (await app.test_client().get("/")).text == "A"
    assert (await app.test_client().get("/sync")).text == "BHEY!"
    # Jinja's own async API, in a coroutine that is not on the bridge.
    async with app.app_context():
        template = app.jinja_env.from_string(
            "{{ lookup('c') }}{% for i in numbers(2) %}{{ i }}{% endfor %}{{ h.rows|list }}"
        )
        holder = type("Holder", (), {"rows": _numbers(1)})
        assert await template.render_async(lookup=lookup, numbers=_numbers, h=holder) == "C01[0]"


# What a template reaches may be async (the default environment, on the bridge)


async def _slow(value: object) -> object:
    await asyncio.sleep(0)
    return value


async def _numbers(n: int) -> AsyncIterator[int]:
    for i in range(n):
        await asyncio.sleep(0)
        yield i


async def test_template_for_loops_iterate_async_generators(app: Flask) -> None:
    class Holder:
        rows = _numbers(2)

    @app.get("/")
    async def index() -> str:
        return await aioflask.render_template_string(
            "{% for i in numbers(3) %}{{ i }}{% endfor %}|"
            "{% for i in passed %}{{ loop.index }}{% endfor %}|"
            "{% for i in holder.rows %}{{ i }}{% endfor %}|"
            "{% for i in mapping['rows'] %}{{ i }}{% endfor %}|"
            "{{ numbers(3)|map('string')|join(',') }}|{{ numbers(4)|list|length }}",
            numbers=_numbers,
            passed=_numbers(2),
            holder=Holder(),
            mapping={"rows": _numbers(1)},
        )

    assert (await app.test_client().get("/")).text == "012|12|01|0|0,1,2|4"


async def test_templates_await_async_methods_macros_filters_and_tests(app: Flask) -> None:
    class User:
        async def name(self) -> str:
            await asyncio.sleep(0)
            return "ada"

    @app.template_filter()
    async def shouted(value: str) -> str:
        await asyncio.sleep(0)
        return value.upper() + "!"

    @app.template_test()
    async def admin(value: str) -> bool:
        await asyncio.sleep(0)
        return value == "ada"

    @app.template_global()
    async def greeting() -> str:
        return await _slow("hello")  # type: ignore[return-value]

    source = (
        "{% macro card(user) %}[{{ user.name()|shouted }}]{% endmacro %}"
        "{{ greeting() }} {{ card(user) }} {{ user.name() is admin }}"
        " {% set n = slow(2) %}{{ n * 21 }}"
    )

    @app.get("/")
    async def index() -> str:
        return await aioflask.render_template_string(source, user=User(), slow=_slow)

    @app.get("/sync")
    def sync() -> str:
        return flask.render_template_string(source, user=User(), slow=_slow)

    expected = "hello [ADA!] True 42"
    assert (await app.test_client().get("/")).text == expected
    assert (await app.test_client().get("/sync")).text == expected


async def test_templates_render_with_jinjas_own_api(app: Flask) -> None:
    async with app.app_context():
        template = app.jinja_env.from_string("{% for i in numbers(2) %}{{ i }}{% endfor %}")
        assert await template.render_async(numbers=_numbers) == "01"
        assert [p async for p in template.generate_async(numbers=_numbers)] == ["0", "1"]
        # A template that awaits nothing renders anywhere, also in a coroutine.
        assert app.jinja_env.from_string("{{ 1 + 1 }}").render() == "2"
        with pytest.raises(aioflask.AwaitOutsideBridgeError):
            template.render(numbers=_numbers)


async def test_templates_call_async_functions_where_no_loop_runs(app: Flask) -> None:
    def render_in_a_thread() -> str:
        with app.app_context():
            return flask.render_template_string("{{ slow(5) }}", slow=_slow)

    assert await asyncio.to_thread(render_in_a_thread) == "5"


async def rendered(app: Flask, source: str, **context: Any) -> str:
    """What an async view rendering ``source`` with ``context`` answers."""

    @app.get("/rendered")
    async def view() -> str:
        return await aioflask.render_template_string(source, **context)

    return (await app.test_client().get("/rendered")).text


async def test_async_iterable_objects_keep_their_attributes_in_templates(app: Flask) -> None:
    class Page:
        total = 3

        def __aiter__(self) -> AsyncIterator[int]:
            return _numbers(3)

        def __len__(self) -> int:
            return 3

        def __str__(self) -> str:
            return "PAGE"

    source = (
        "{{ page }} {{ page.total }} {{ page|length }} {{ page.__class__.__name__ }}"
        " {% for i in page %}{{ i }}{% endfor %}{% for i in page %}{{ i }}{% endfor %}"
        " {{ page|list }}"
    )
    assert await rendered(app, source, page=Page()) == "PAGE 3 3 Page 012012 [0, 1, 2]"


async def test_templates_await_what_sync_filters_and_calls_return(app: Flask) -> None:
    class Both:
        """Awaitable and async-iterable (as some ORMs' query sets)."""

        def __await__(self) -> Any:
            return _slow([7, 8]).__await__()

        def __aiter__(self) -> AsyncIterator[int]:
            return _numbers(2)

    class Tree:
        def __init__(self, name: str, *children: Tree) -> None:
            self.name = name
            self.kids = children

        async def children(self) -> AsyncIterator[Tree]:
            for child in self.kids:
                yield child

    app.jinja_env.filters |= {"upper_later": lambda value: _slow(value.upper())}
    app.jinja_env.tests["later"] = lambda value: _slow(value == "x")

    source = (
        "{{ both() }} {% for i in both_value %}{{ i }}{% endfor %}"
        " {{ 'a'|upper_later }} {{ 'x' is later }} {{ 'y' is later }}"
        " {% for t in [tree] recursive %}{{ t.name }}({{ loop(t.children()) }}){% endfor %}"
    )
    tree = Tree("a", Tree("b", Tree("c")), Tree("d"))
    text = await rendered(app, source, both=Both, both_value=Both(), tree=tree)
    assert text == "[7, 8] 01 A True False a(b(c())d())"


def test_render_and_stream_template_in_sync_views(app: Flask) -> None:
    @app.get("/")
    def index() -> str:
        return aioflask.render_template("hello.html", name="sync")

    @app.get("/string")
    def string() -> str:
        return aioflask.render_template_string("{{ 6 * 7 }} {{ where }}")

    @app.get("/stream")
    def stream() -> Any:
        return aioflask.stream_template_string("{% for i in range(3) %}{{ i }}{% endfor %}")

    client = app.test_client()  # a sync test: Flask's way
    assert client.get("/").text == "<p>Hello sync from aioflask</p>"
    assert client.get("/string").text == "42 aioflask"
    assert client.get("/stream").text == "012"
    with app.test_request_context():
        assert aioflask.render_template_string("{{ where }}") == "aioflask"
        assert "".join(aioflask.stream_template_string("{{ where }}")) == "aioflask"


async def test_registered_filters_and_tests_stay_themselves(app: Flask) -> None:
    async def shout(value: str) -> str:
        await asyncio.sleep(0)
        return value.upper()

    def odd(value: int) -> bool:
        return value % 2 == 1

    app.add_template_filter(shout)
    app.jinja_env.tests["odd"] = odd
    assert app.jinja_env.filters["shout"] is shout
    assert app.jinja_env.tests["odd"] is odd
    source = "{{ 'a'|shout }} {{ 3 is odd }} {{ ['b', 'c']|map('shout')|join }}"
    assert await rendered(app, source) == "A True BC"


async def test_a_forgotten_await_in_an_async_view_says_what_to_write(app: Flask) -> None:
    app.testing = True

    @app.get("/")
    async def index() -> Any:
        return aioflask.render_template_string("{{ 1 }}")

    @app.get("/missing")
    async def missing() -> Any:
        return aioflask.render_template_string("{{ 1 }}"), 404  # Flask's idiom

    with pytest.raises(TypeError, match=r"write 'await render_template_string\(\.\.\.\)'"):
        await app.test_client().get("/")
    with pytest.raises(TypeError, match=r"write 'await render_template_string\(\.\.\.\)'"):
        await app.test_client().get("/missing")


# The fast paths of rendering give what Jinja and Flask give


def test_template_signals_are_sent_only_when_heard(app: Flask, monkeypatch: Any) -> None:
    from unittest import mock

    def send(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("sent")

    signals = (flask.before_render_template, flask.template_rendered)
    with app.test_request_context():
        for signal in signals:
            assert not signal.receivers
            monkeypatch.setattr(type(signal), "send", send)
        assert aioflask.render_template_string("{{ where }}") == "aioflask"
        monkeypatch.undo()
        with mock.patch.object(flask.template_rendered, "send") as replaced:
            assert aioflask.render_template("hello.html", name="x").startswith("<p>")
        assert replaced.call_count == 1
        assert replaced.call_args.args == (app,)


def test_template_context_is_flasks(app: Flask) -> None:
    bp = flask.Blueprint("bp", __name__)

    @bp.context_processor
    def from_bp() -> dict[str, str]:
        return {"bp": "yes", "where": "bp"}

    bp.get("/b")(lambda: "")
    app.register_blueprint(bp)
    for path in ("/b", "/"):
        with app.test_request_context(path):
            ours: dict[str, Any] = {"name": "n"}
            flasks: dict[str, Any] = {"name": "n"}
            app.update_template_context(ours)
            flask.Flask.update_template_context(app, flasks)
            assert ours == flasks
            assert list(ours) == list(flasks)
    with app.app_context():
        ours, flasks = {}, {}
        app.update_template_context(ours)
        flask.Flask.update_template_context(app, flasks)
        assert ours == flasks


def test_new_context_is_jinjas(app: Flask) -> None:
    import jinja2

    with app.test_request_context():
        for template in (
            app.jinja_env.from_string("{{ a }}"),
            app.jinja_env.from_string("{{ a }}", globals={"url_for": 1, "mine": 2}),
        ):
            calls = (({"a": 1, "g": 3},), (None,), ({"a": 1}, True), ({"a": 1}, False, {"l": 2}))
            for args in calls:
                ours = template.new_context(*args)  # type: ignore[arg-type]
                jinjas = jinja2.Template.new_context(template, *args)  # type: ignore[arg-type]
                assert type(ours) is type(jinjas)
                assert list(ours.parent.items()) == list(jinjas.parent.items())
                assert ours.globals_keys == jinjas.globals_keys
                assert ours.blocks == jinjas.blocks
        with pytest.raises(TypeError):
            app.jinja_env.from_string("").new_context({1: "not a string key"})


def test_calls_filters_and_tests_work_as_in_jinja(app: Flask) -> None:
    import jinja2

    @jinja2.pass_context
    def ctx_name(context: Any, suffix: str) -> str:
        return f"{context['name']}{suffix}"

    @jinja2.pass_environment
    def env_name(environment: Any) -> str:
        return type(environment).__name__.lower()

    @jinja2.pass_eval_context
    def escaping(eval_ctx: Any) -> bool:
        return bool(eval_ctx.autoescape)

    class Callable:
        @jinja2.pass_context
        def __call__(self, context: Any) -> str:
            return str(context["name"]).upper()

    def stops() -> None:
        raise StopIteration

    source = (
        "{% for i in [1, 2] %}{{ ctx_name(i) }}{{ loop.cycle('a', 'b') }}{% endfor %}"
        " {{ env_name() }} {{ escaping() }} {{ callable() }} {{ stops() is defined }}"
        " {{ '%d'|format(3) }} {{ 4 is even }} {{ [1, 2]|sum }} {{ name|upper|lower }}"
    )
    context = {
        "name": "n",
        "ctx_name": ctx_name,
        "env_name": env_name,
        "escaping": escaping,
        "callable": Callable(),
        "stops": stops,
    }
    jinja = jinja2.Environment(autoescape=True).from_string(source).render(context)
    with app.test_request_context():
        ours = app.jinja_env.from_string(source).render(context)
    assert ours == jinja
    assert ours == "n1an2b environment True N False 3 True 3 n"


def test_templates_without_filters_tests_or_loops_compile_as_in_jinja(app: Flask) -> None:
    import jinja2.compiler

    source = "{{ a }} {{ f(1) }}{% if b %}{{ c.d }}{% endif %}"
    ours = app.jinja_env.compile(source, raw=True)
    app.jinja_env.code_generator_class = jinja2.compiler.CodeGenerator
    assert ours == app.jinja_env.compile(source, raw=True)


async def test_filters_and_tests_await_values_of_new_awaitable_types(app: Flask) -> None:
    # Each class is new: its type is classified by the first value seen.
    def later(value: object) -> Any:
        class Later:
            def __await__(self) -> Any:
                return _slow(value).__await__()

        return Later()

    app.jinja_env.filters["later"] = later
    app.jinja_env.tests["later_true"] = lambda value: later(True)
    source = "{{ 1|later }}{{ 2|later }} {{ 3 is later_true }} {{ later(4) }}"
    assert await rendered(app, source, later=later) == "12 True 4"
