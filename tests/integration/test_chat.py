"""The chat box (seed 002): an account's users write to the operator's staff, who answer from the
back office; each side counts what it has not read; a user sees only their own account's
conversation; messages are plain text of bounded length; a message is told live to the account's
chat and to the back office."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session

from app.errors import NotFound, PermissionDenied, ValidationFailed
from app.models import utcnow
from app.services import chat, live
from app.services.operator import chat as operator_chat
from app.services.permissions import Actor
from tests.factories import actor_for, make_account, make_user, owner_and_account
from tests.integration.test_operator import make_operator


@pytest.fixture(autouse=True)
def _nothing_pending():
    live._take_pending()
    yield
    live._take_pending()


def _member(session: Session, account, email: str) -> Actor:
    user = make_user(session, account, email, "member")
    session.commit()
    return actor_for(user, "member")


def test_a_customer_writes_the_staff_answer_and_each_side_counts_what_it_has_not_read(session: Session):
    owner, account = owner_and_account(session)
    member = _member(session, account, "member@example.com")
    operator = make_operator(session)

    view = chat.send(session, member, "  Why was I charged twice?\r\nInvoice INV-7  ")
    session.commit()
    assert [(line.author, line.body, line.from_support) for line in view.lines] == [
        ("Member", "Why was I charged twice?\nInvoice INV-7", False)
    ]
    # Told to the account's open chats and to the back office, once committed.
    assert live._take_pending() == {live.chat_topic(account.id), live.OPERATOR_INBOX}
    # The writer's own message is not unread for anyone of the account; the staff have one.
    assert chat.unread(session, member) == 0 and chat.unread(session, owner) == 0
    assert operator_chat.unread_total(session) == 1
    [row] = operator_chat.inbox(session).rows
    assert (row.account_id, row.account_name, row.unread) == (account.public_id, "Acme Inc", 1)
    assert row.last_message == "Why was I charged twice? Invoice INV-7"

    # Opening the conversation reads it for every member of staff.
    lines = operator_chat.read(session, account.public_id)
    assert [line.body for line in lines] == ["Why was I charged twice?\nInvoice INV-7"]
    assert operator_chat.unread_total(session) == 0
    assert operator_chat.inbox(session).rows[0].unread == 0

    lines = operator_chat.reply(session, operator, account.public_id, "It was refunded this morning.")
    session.commit()
    assert [(line.author, line.from_support) for line in lines] == [("Member", False), ("Olga Ops", True)]
    assert live.chat_topic(account.id) in live._take_pending()
    # Each user of the account has their own count, until they open the chat.
    assert chat.unread(session, member) == 1 and chat.unread(session, owner) == 1
    assert [line.body for line in chat.read(session, owner).lines][-1] == "It was refunded this morning."
    session.commit()
    assert chat.unread(session, owner) == 0 and chat.unread(session, member) == 1
    # The staff's own answer is nothing for them to read.
    assert operator_chat.unread_total(session) == 0
    assert operator_chat.inbox(session).rows[0].last_from_support


def test_a_user_sees_only_their_own_accounts_conversation(session: Session):
    owner, account = owner_and_account(session)
    other_account = make_account(session, "Globex")
    stranger = actor_for(make_user(session, other_account, "stranger@globex.example"), "owner")
    session.commit()
    operator = make_operator(session)
    chat.send(session, owner, "Acme's private question")
    operator_chat.reply(session, operator, account.public_id, "Acme's private answer")
    session.commit()

    assert chat.read(session, stranger).lines == []
    assert chat.unread(session, stranger) == 0
    chat.send(session, stranger, "Globex here")
    session.commit()
    assert [line.body for line in chat.read(session, stranger).lines] == ["Globex here"]
    assert [line.body for line in chat.read(session, owner).lines] == [
        "Acme's private question",
        "Acme's private answer",
    ]
    # The back office lists both, the newest message first.
    assert [row.account_name for row in operator_chat.inbox(session).rows] == ["Globex", "Acme Inc"]


def test_messages_are_plain_text_of_bounded_length(session: Session):
    owner, account = owner_and_account(session)
    operator = make_operator(session)
    for empty in ("", "   \n\t "):
        with pytest.raises(ValidationFailed, match="Write a message first") as refused:
            chat.send(session, owner, empty)
        assert refused.value.field == "body"
    with pytest.raises(ValidationFailed, match="2,000 characters"):
        chat.send(session, owner, "x" * (chat.MAX_LENGTH + 1))
    with pytest.raises(ValidationFailed, match="2,000 characters"):
        operator_chat.reply(session, operator, account.public_id, "y" * (chat.MAX_LENGTH + 1))
    assert chat.read(session, owner).lines == []

    # Kept as typed (markup is text; the page shows it as text), minus invisible control characters.
    view = chat.send(session, owner, "<script>alert(1)</script>\x07 **bold**")
    assert view.lines[-1].body == "<script>alert(1)</script> **bold**"
    assert chat.send(session, owner, "x" * chat.MAX_LENGTH).lines[-1].body == "x" * chat.MAX_LENGTH


def test_a_flood_of_messages_is_refused_for_a_minute(session: Session):
    owner, _ = owner_and_account(session)
    now = utcnow()
    for number in range(chat.MAX_PER_MINUTE):
        chat.send(session, owner, f"message {number}", now=now)
    with pytest.raises(ValidationFailed, match="Too many messages"):
        chat.send(session, owner, "one more", now=now)
    chat.send(session, owner, "a minute later", now=now + timedelta(minutes=1, seconds=1))


def test_the_operator_answers_only_an_account_that_exists(session: Session):
    operator = make_operator(session)
    with pytest.raises(NotFound):
        operator_chat.reply(session, operator, "acct_missing", "Hello")
    with pytest.raises(NotFound):
        operator_chat.read(session, "acct_missing")


def test_a_signed_out_visitor_reaches_no_conversation(session: Session):
    with pytest.raises(PermissionDenied):
        chat.read(
            session,
            Actor(
                user_id=1,
                account_id=1,
                email="x@example.com",
                full_name="",
                role_key="none",
                role_name="None",
                permissions=frozenset(),
            ),
        )


def test_the_inbox_pages_by_newest_message(session: Session):
    owner, _ = owner_and_account(session)
    for number in range(3):
        account = make_account(session, f"Account {number}")
        user = make_user(session, account, f"user{number}@example.com")
        session.commit()
        chat.send(session, actor_for(user, "owner"), "hi")
    # Acme writes last: its conversation is on top.
    chat.send(session, owner, "first")
    session.commit()
    first = operator_chat.inbox(session, limit=2)
    assert [row.account_name for row in first.rows] == ["Acme Inc", "Account 2"]
    second = operator_chat.inbox(session, before_id=first.next_before_id, limit=2)
    assert [row.account_name for row in second.rows] == ["Account 1", "Account 0"]
    assert second.next_before_id is None
