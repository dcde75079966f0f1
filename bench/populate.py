"""Fill our store through its API, fast: `python -m bench.populate DATA_DIR SIZE ACCOUNT:COUNT...`.

Only for setting up a benchmark (a big mailbox, the mailboxes of the IMAP load): this process
replaces os.fsync with a no-op and calls os.sync() once at the end, since what is measured later
is reading, not the durability of the set-up. Runs before the server opens the account.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bench.mail import RARE_EVERY, make_message
from mox.store import Store

CONCURRENCY = 256


async def populate(data_dir: Path, account: str, count: int, size: int) -> None:
    async with Store(data_dir) as store:
        acc = store.account(account)
        sem = asyncio.Semaphore(CONCURRENCY)
        to = f"{account}@bench.test"

        async def one(i: int) -> None:
            async with sem:
                await acc.deliver("Inbox", make_message(i, size, to, rare=i % RARE_EVERY == 1))

        tasks: set[asyncio.Task[None]] = set()
        for i in range(1, count + 1):
            tasks.add(asyncio.create_task(one(i)))
            if len(tasks) >= 4 * CONCURRENCY:
                done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
        await asyncio.gather(*tasks)
        # Big messages are indexed after their commit (mox.store.account); the benchmark
        # measures a fully indexed mailbox.
        await acc.index_backlog()


def main() -> None:
    data_dir, size = Path(sys.argv[1]), int(sys.argv[2])
    os.fsync = lambda fd: None  # set-up only, see the module docstring
    for spec in sys.argv[3:]:
        account, _, count = spec.partition(":")
        asyncio.run(populate(data_dir, account, int(count), size))
    os.sync()


if __name__ == "__main__":
    main()
