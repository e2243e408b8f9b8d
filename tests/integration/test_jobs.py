from datetime import timedelta

import pytest
from sqlmodel import Session, select

from app.jobs import handlers  # noqa: F401  registers deliver_email
from app.jobs import queue as job_queue
from app.jobs.queue import enqueue, run_due_jobs
from app.models import Job, OutboxEmail, utcnow
from app.services.email import queue_email


@pytest.fixture
def flaky_calls(monkeypatch) -> list[dict]:
    """A job kind "test_flaky" whose handler fails twice, then succeeds, registered for this test only;
    the payloads it was called with."""
    calls: list[dict] = []

    def flaky(session: Session, payload: dict) -> None:
        calls.append(payload)
        if len(calls) < 3:
            raise RuntimeError("receiver down")

    monkeypatch.setitem(job_queue._HANDLERS, "test_flaky", flaky)
    return calls


def test_job_enqueued_in_a_rolled_back_transaction_does_not_exist(engine):
    with Session(engine) as session:
        enqueue(session, "test_flaky", {"n": 1})
        session.rollback()
    with Session(engine) as session:
        assert session.exec(select(Job)).all() == []


def test_failing_job_is_retried_with_backoff_until_it_succeeds(engine, flaky_calls):
    with Session(engine) as session:
        enqueue(session, "test_flaky", {"n": 1})
        session.commit()
    clock = [utcnow()]
    assert run_due_jobs(engine, now=lambda: clock[0]) == 1
    assert run_due_jobs(engine, now=lambda: clock[0]) == 0  # backing off
    for _ in range(2):
        clock[0] += timedelta(hours=1)
        run_due_jobs(engine, now=lambda: clock[0])
    with Session(engine) as session:
        job = session.exec(select(Job)).one()
    assert job.status == "done" and job.attempts == 3 and len(flaky_calls) == 3


def test_dedupe_key_enqueues_once(engine):
    with Session(engine) as session:
        assert enqueue(session, "test_flaky", {}, dedupe_key="k1") is not None
        assert enqueue(session, "test_flaky", {}, dedupe_key="k1") is None
        session.commit()
        assert len(session.exec(select(Job)).all()) == 1


def test_email_is_delivered_by_smtp_when_configured(engine, smtp_server):
    with Session(engine) as session:
        queue_email(session, to="billing@example.com", subject="Hello", body="Body text")
        session.commit()
    run_due_jobs(engine)
    assert smtp_server.event.wait(5)
    envelope = smtp_server.messages[0]
    assert envelope.rcpt_tos == ["billing@example.com"]
    assert b"Subject: Hello" in envelope.content and b"Body text" in envelope.content
    with Session(engine) as session:
        assert session.exec(select(OutboxEmail)).one().sent_at is not None


def test_without_smtp_the_email_stays_in_the_outbox(engine):
    with Session(engine) as session:
        queue_email(session, to="billing@example.com", subject="Hello", body="Body")
        session.commit()
        assert session.exec(select(Job)).all() == []
        assert session.exec(select(OutboxEmail)).one().sent_at is None
