"""A long task that reports its progress to the browser over server-sent events.

``POST /jobs`` starts a job as a background task and answers at once;
``GET /jobs/<id>/events`` streams its progress until it is done. Serve it with
``flask --app progress_bar aiorun`` (from this folder) and open
http://127.0.0.1:5000/.
"""

from __future__ import annotations

import asyncio
import collections
import os
import secrets
from collections.abc import AsyncIterator
from typing import Any

from aioflask import (
    Flask,
    ServerSentEvent,
    abort,
    current_app,
    render_template,
    request,
    sse_response,
    url_for,
)

#: Finished jobs kept for late readers, at most.
KEEP_FINISHED = 100


class Job:
    """A job's progress, and a way to wait for its next change."""

    def __init__(self, steps: int) -> None:
        self.id = secrets.token_urlsafe(8)
        self.steps = steps
        self.done = 0
        self.state = "running"
        #: Event streams reading this job now.
        self.watchers = 0
        self._changed = asyncio.Event()

    def snapshot(self) -> dict[str, Any]:
        return {"id": self.id, "done": self.done, "steps": self.steps, "state": self.state}

    def _notify(self) -> None:
        # Wake every waiting stream, then start a new round of waiting.
        self._changed.set()
        self._changed = asyncio.Event()

    def advance(self) -> None:
        self.done += 1
        self._notify()

    def end(self, state: str) -> None:
        self.state = state
        self._notify()

    async def updates(self) -> AsyncIterator[dict[str, Any]]:
        """The current progress, then each change, until the job ends."""
        while True:
            changed = self._changed  # taken first: no change can slip between
            yield self.snapshot()
            if self.state != "running":
                return
            await changed.wait()


def create_app(**config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(
        STEPS=int(os.environ.get("PROGRESS_STEPS", 20)),
        STEP_SECONDS=float(os.environ.get("PROGRESS_STEP_SECONDS", 0.25)),
        SSE_KEEPALIVE=15.0,
    )
    app.config.update(config)
    jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()
    app.extensions["progress_jobs"] = jobs

    def get_job(job_id: str) -> Job:
        job = jobs.get(job_id)
        if job is None:
            abort(404)
        return job

    @app.get("/")
    async def index():
        return await render_template("progress.html")

    @app.post("/jobs")
    def start_job():
        body = request.get_json(silent=True) or {}
        steps = body.get("steps", app.config["STEPS"]) if isinstance(body, dict) else None
        if not isinstance(steps, int) or not 1 <= steps <= 1000:
            abort(400, "steps: a number from 1 to 1000")
        job = Job(steps)
        jobs[job.id] = job
        finished = [j for j in jobs.values() if j.state != "running"]
        for old in finished[:-KEEP_FINISHED]:
            del jobs[old.id]
        # Runs once this response is sent; awaited at shutdown.
        app.add_background_task(run_job, job)
        return {**job.snapshot(), "events": url_for("job_events", job_id=job.id)}, 202

    @app.get("/jobs/<job_id>")
    def job_status(job_id: str):
        return get_job(job_id).snapshot()

    @app.get("/jobs/<job_id>/events")
    def job_events(job_id: str):
        job = get_job(job_id)

        async def events() -> AsyncIterator[ServerSentEvent]:
            job.watchers += 1
            try:
                async for progress in job.updates():
                    kind = "progress" if progress["state"] == "running" else "done"
                    yield ServerSentEvent(progress, event=kind, id=progress["done"])
            finally:
                # Also when the browser goes away: aioflask closes the generator.
                job.watchers -= 1

        return sse_response(events(), keepalive=app.config["SSE_KEEPALIVE"])

    return app


async def run_job(job: Job) -> None:
    """The long task: here it sleeps; yours would work."""
    try:
        for _ in range(job.steps):
            await asyncio.sleep(current_app.config["STEP_SECONDS"])
            job.advance()
    except BaseException:
        job.end("failed")  # cancelled at shutdown, or an error (logged by aioflask)
        raise
    job.end("finished")


app = create_app()
