"""A Nova agent that joins a document, fixes typos as people type, and shows where it works.

    scripts/run-hub.sh &                      # a hub on ws://127.0.0.1:1234
    python3 examples/agent_fixes_typos.py notes.md

Open the same document in any Yjs client (the viewer, the VS Code extension, or the node
snippet in the README) and type "teh": the agent turns it into "the" next to you.
"""

from __future__ import annotations

import argparse
import asyncio
import re

from collab_server.agent import AgentSession

TYPOS = {"teh": "the", "recieve": "receive", "seperate": "separate"}
PATTERN = re.compile(r"\b(" + "|".join(TYPOS) + r")\b")


async def run(hub: str, document: str, seconds: float) -> None:
    async with AgentSession(hub, document, name="TypoFixer", model="rules-1") as agent:
        print(f"joined {document!r}: {len(agent.text)} characters")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            fixed = PATTERN.sub(lambda m: TYPOS[m.group(1)], agent.text)
            if fixed != agent.text:
                first = PATTERN.search(agent.text)
                edits = agent.replace_all(fixed)
                if first is not None:
                    agent.set_cursor(first.start(), len(TYPOS[first.group(1)]))
                print(f"fixed typos with {edits} edits")
            try:
                await agent.wait_for_change(timeout=max(0.1, deadline - loop.time()))
            except TimeoutError:
                break


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("document")
    parser.add_argument("--hub", default="ws://127.0.0.1:1234")
    parser.add_argument("--seconds", type=float, default=300.0, help="how long to stay (300)")
    args = parser.parse_args()
    asyncio.run(run(args.hub, args.document, args.seconds))


if __name__ == "__main__":
    main()
