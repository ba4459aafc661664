import CRBD
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A shared record in a RADOS object beside the image (`swifttarget.IMAGE.NAME` in its pool):
/// the data starts with its 8-byte version, which every write compares and replaces in one
/// atomic op (crbd_record_write), and writers notify the object's watchers, the other gateways.
final class RBDSharedRecord: SharedRecord {
    /// Records are small (persistent reservations of a few hundred registrations).
    static let maxBytes = 1 << 20
    /// How long a writer waits for the other gateways to take the notice.
    static let notifyTimeoutMs: UInt64 = 5000

    let object: String
    private let cluster: RBDCluster
    private struct Context: @unchecked Sendable { let raw: crbd_ioctx_t }
    private let context: Context

    /// The handlers, boxed for the C callback; retained while the watch lives.
    final class Listeners: Sendable {
        let handlers = Mutex<[@Sendable () -> Void]>([])
        /// Set by the record: the watch broke (OSD restart, session reset), set up a new one.
        let lost = Mutex<(@Sendable () -> Void)?>(nil)
        func fire() { for h in handlers.withLock({ $0 }) { h() } }
    }
    private let listeners = Listeners()
    private struct Watch: @unchecked Sendable { let raw: OpaquePointer }
    private let watch = Mutex<Watch?>(nil)
    /// False from a broken or failed watch until a new one stands: readers must not trust
    /// their copy meanwhile (SharedReservations then reads before every command).
    private let watched = Atomic<Bool>(false)
    private let closed = Atomic<Bool>(false)
    /// How long to wait before setting up a watch again.
    static let rewatchDelay: DispatchTimeInterval = .seconds(1)

    init(object: String, cluster: RBDCluster, context: crbd_ioctx_t) {
        self.object = object
        self.cluster = cluster
        self.context = Context(raw: context)
    }

    func read() throws(BackstoreError) -> SharedRecordValue {
        // Most records are a few hundred bytes: start small, read again larger when it was full.
        var buffer = [UInt8](repeating: 0, count: 4096)
        var n: Int32
        while true {
            n = buffer.withUnsafeMutableBytes { crbd_record_read(context.raw, object, $0.baseAddress!, $0.count) }
            guard n == buffer.count, buffer.count < Self.maxBytes else { break }
            buffer = [UInt8](repeating: 0, count: min(buffer.count * 16, Self.maxBytes))
        }
        if n == -ENOENT { return SharedRecordValue(bytes: [], version: 0) }
        guard n >= 8 else { throw BackstoreError(.read, errno: n < 0 ? -n : EPROTO, path: object) }
        let version = buffer[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return SharedRecordValue(bytes: Array(buffer[8..<Int(n)]), version: version)
    }

    func replace(_ bytes: [UInt8], ifVersion version: UInt64) throws(BackstoreError) -> Bool {
        let next = version + 1
        var blob = (0..<8).map { UInt8(truncatingIfNeeded: next >> (56 - 8 * $0)) }
        blob += bytes
        guard blob.count <= Self.maxBytes else { throw BackstoreError(.write, errno: EFBIG, path: object) }
        let rc = blob.withUnsafeBytes { crbd_record_write(context.raw, object, $0.baseAddress!, $0.count, version) }
        if rc == 1 { return false }
        guard rc == 0 else { throw BackstoreError(.write, errno: -rc, path: object) }
        // The change is in RADOS; a lost notice only delays the others until they next read.
        _ = crbd_record_notify(context.raw, object, Self.notifyTimeoutMs)
        return true
    }

    var isWatched: Bool { watched.load(ordering: .acquiring) }

    func onChange(_ handler: @escaping @Sendable () -> Void) {
        listeners.handlers.withLock { $0.append(handler) }
        listeners.lost.withLock { lost in
            lost = lost ?? { [weak self] in self?.watchBroke() }
        }
        startWatching()
    }

    /// From librados's thread: no librados calls here; the new watch is set up elsewhere.
    private func watchBroke() {
        watched.store(false, ordering: .releasing)
        DispatchQueue.global().asyncAfter(deadline: .now() + Self.rewatchDelay) { [weak self] in self?.rewatch() }
    }

    private func rewatch() {
        guard !closed.load(ordering: .acquiring) else { return }
        if let old = watch.withLock({ current -> Watch? in defer { current = nil }; return current }) {
            _ = crbd_record_unwatch(old.raw, cluster.rawHandle)
        }
        startWatching()
        listeners.fire()  // what changed while no watch stood is read now
        if !isWatched { watchBroke() }
    }

    /// Watches the object (made first, empty at version 1, when missing: a watch needs an object).
    private func startWatching() {
        watch.withLock { current in
            guard current == nil else { return }
            let first: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 1]
            _ = crbd_record_write(context.raw, object, first, first.count, 0)
            var raw: OpaquePointer?
            let rc = crbd_record_watch(context.raw, object, { arg, err in
                guard let arg else { return }
                let listeners = Unmanaged<Listeners>.fromOpaque(arg).takeUnretainedValue()
                // A change (err 0) or a lost watch: either way the record must be read again.
                listeners.fire()
                if err != 0 { listeners.lost.withLock { $0 }?() }
            }, Unmanaged.passUnretained(listeners).toOpaque(), &raw)
            if rc == 0, let raw {
                current = Watch(raw: raw)
                watched.store(true, ordering: .releasing)
            }
        }
    }

    func close() {
        closed.store(true, ordering: .releasing)
        watched.store(false, ordering: .releasing)
        guard let w = watch.withLock({ current -> Watch? in defer { current = nil }; return current }) else { return }
        _ = crbd_record_unwatch(w.raw, cluster.rawHandle)
    }
}
