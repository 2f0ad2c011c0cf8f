"""Peer of benches/programs/chain_loop.soma: a counting loop of 1,000,000
rounds on a Store cell. SOMA's Store is global state, so the cell `n` is a
module global here (read and written through the module's namespace every
round, as the SOMA program reads and writes the Store cell)."""

from harness import main

n = 0


def run():
    global n
    n = 0
    while True:
        n = n + 1
        if not n < 1000000:
            break
    if n != 1000000:
        raise SystemExit("loop gave the wrong count")
    return "loop ok"


if __name__ == "__main__":
    main(run)
