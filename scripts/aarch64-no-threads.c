/* Preloaded into the aarch64 test binaries that scripts/aarch64.sh runs under qemu-user.
 *
 * Under qemu-user (Debian's 7.2 and 10.0) on our machines, a guest that creates a thread hangs
 * inside qemu, before the thread's stack is even mapped. So thread creation is refused here
 * instead, with EAGAIN, the error for "no resources for another thread". Rust's
 * thread::Builder::spawn then returns an io::Error of kind WouldBlock, and:
 *   - libtest runs each test synchronously on the main thread (its own fallback when
 *     it cannot spawn a test thread), so ordinary #[test] suites run;
 *   - crates/jit/tests/common::on_big_stack runs its closure on the calling thread;
 *   - anything else that needs a thread fails with that error rather than hanging. */
#include <errno.h>
#include <pthread.h>

int pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                   void *(*start)(void *), void *arg) {
    (void)thread;
    (void)attr;
    (void)start;
    (void)arg;
    return EAGAIN;
}
