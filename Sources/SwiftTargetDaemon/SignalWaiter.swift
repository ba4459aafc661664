import Dispatch
import Foundation

/// SIGTERM or SIGINT: stop politely; SIGHUP: reload. Each handler is in place (the kernel
/// delivers the signal to it) before `arm` returns, so a signal sent right after the daemon
/// says it is ready is never lost: the dispatch source is armed asynchronously, and until then
/// the signal, set to be ignored so the default action cannot kill the daemon, would be dropped.
enum SignalWaiter {
    /// Arms SIGTERM and SIGINT; `waitForTermination` returns once either came (also before it
    /// was called).
    static func armTermination() {
        for signalNumber in [SIGTERM, SIGINT] { arm(signalNumber) { Termination.shared.fire() } }
    }

    static func waitForTermination() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Termination.shared.wait(continuation)
        }
    }

    /// Runs `handler` on every SIGHUP (the daemon's reload) from now on.
    static func onHangup(_ handler: @escaping @Sendable () -> Void) {
        arm(SIGHUP, handler)
    }

    private static func arm(_ signalNumber: Int32, _ handler: @escaping @Sendable () -> Void) {
        signal(signalNumber, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
        let armed = DispatchSemaphore(value: 0)
        source.setRegistrationHandler { armed.signal() }
        source.setEventHandler(handler: handler)
        source.resume()
        _ = armed.wait(timeout: .now() + 5)
        Retained.sources.append(source)
    }

    /// A stop asked for, remembered until someone waits for it.
    private final class Termination: @unchecked Sendable {
        static let shared = Termination()
        private let lock = NSLock()
        private var fired = false
        private var continuation: CheckedContinuation<Void, Never>?

        func fire() {
            lock.lock()
            fired = true
            let pending = continuation
            continuation = nil
            lock.unlock()
            pending?.resume()
        }

        func wait(_ c: CheckedContinuation<Void, Never>) {
            lock.lock()
            if fired {
                lock.unlock()
                c.resume()
                return
            }
            continuation = c
            lock.unlock()
        }
    }

    /// Signal sources must outlive the wait.
    private enum Retained {
        nonisolated(unsafe) static var sources: [any DispatchSourceSignal] = []
    }
}
