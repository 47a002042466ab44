"""A Nova agent that follows document changes on Kafka and acts through the agent SDK.

    collab-server serve --events-kafka-brokers 127.0.0.1:9092 &     # a hub publishing events
    python3 examples/follow_changes.py --brokers 127.0.0.1:9092 --documents 'notes/*'

It reads the deployment's topic (``nova.events``) from the newest message, keeps only
``document.changed`` events of the documents it follows, and uses their text delta: when
someone types a word it knows as a typo, it joins that document as an agent (AgentSession)
and fixes it beside them. Events are de-duplicated by id (the topic is at-least-once).
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import json
import re
from typing import Any

from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]

from collab_server.agent import AgentSession

TYPOS = {"teh": "the", "recieve": "receive", "seperate": "separate"}
PATTERN = re.compile(r"\b(" + "|".join(TYPOS) + r")\b")


def inserted_text(event: dict[str, Any]) -> str:
    """What the change typed, from the text delta of the ``content`` field."""
    ops = (event["data"].get("delta") or {}).get("content", [])
    return "".join(op.get("insert", "") for op in ops)


async def fix_typos(hub: str, document: str) -> int:
    async with AgentSession(hub, document, name="TypoFollower", model="rules-1") as agent:
        fixed = PATTERN.sub(lambda m: TYPOS[m.group(1)], agent.text)
        return agent.replace_all(fixed) if fixed != agent.text else 0


async def follow(brokers: str, topic: str, hub: str, documents: str, from_beginning: bool) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=brokers,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        group_id=None,
        metadata_max_age_ms=2000,
    )
    await consumer.start()
    for partition in consumer.assignment():  # fix the starting offsets before saying we follow
        await consumer.position(partition)
    seen: dict[str, int] = {}  # document -> newest seq handled (de-duplicates redeliveries)
    pending: dict[str, str] = {}  # document -> typed text not checked yet (a typo may span events)
    try:
        print(f"following {topic!r} on {brokers} for documents {documents!r}", flush=True)
        async for message in consumer:
            event = json.loads(message.value)
            document = event["document"]
            if event["type"] != "document.changed" or not fnmatch.fnmatchcase(document or "", documents):
                continue
            if event["seq"]["last"] <= seen.get(document, 0):
                continue  # already handled: the same id came again
            seen[document] = event["seq"]["last"]
            if "agent:TypoFollower" in event["actors"]:
                continue  # our own fix
            typed = pending.get(document, "") + inserted_text(event)
            pending[document] = typed[-20:]
            if PATTERN.search(typed) or any(word in typed for word in TYPOS):
                edits = await fix_typos(hub, document)
                if edits:
                    pending[document] = ""
                    print(f"{document}: fixed typos ({edits} edits) after {event['id']}", flush=True)
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--brokers", default="127.0.0.1:9092")
    parser.add_argument("--topic", default="nova.events")
    parser.add_argument("--hub", default="ws://127.0.0.1:1234")
    parser.add_argument("--documents", default="*", help="document glob to follow (*)")
    parser.add_argument("--from-beginning", action="store_true", help="replay the topic first")
    args = parser.parse_args()
    asyncio.run(follow(args.brokers, args.topic, args.hub, args.documents, args.from_beginning))


if __name__ == "__main__":
    main()
