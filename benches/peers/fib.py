"""Peer of benches/programs/fib.soma: doubly recursive Fibonacci, fib(24) = 46368
(about 150,000 calls). `fib` is looked up by name on every call, as the SOMA
program reads the Store cell `fib`; n is a local, as SOMA's Register cell _.n."""

from harness import main


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def run():
    result = fib(24)
    if result != 46368:
        raise SystemExit("fib gave the wrong answer")
    return "fib ok"


if __name__ == "__main__":
    main(run)
