// Built in Swift 5 mode: in Swift 6 mode the thread closures of top-level code are
// main-actor isolated and trap on the other threads.
// Two threads increment one Mutex<Int>: correct code. Under ThreadSanitizer this reports a
// "Swift access race" while Synchronization.Mutex is invisible to TSan (see tsan.supp).
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

final class Counter: Sendable { let value = Mutex<Int>(0) }
enum Probe { static let counter = Counter() }

var threads: [pthread_t] = []
for _ in 0..<2 {
    var t = pthread_t()
    pthread_create(&t, nil, { _ in
        for _ in 0..<10_000 { Probe.counter.value.withLock { $0 += 1 } }
        return nil
    }, nil)
    threads.append(t)
}
for t in threads { pthread_join(t, nil) }
print(Probe.counter.value.withLock { $0 })
