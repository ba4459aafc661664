import CRBD
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Where an RBD image lives and who we are to its cluster: `rbd:POOL/IMAGE[,conf=…][,id=…][,keyring=…]`.
public struct RBDLocation: Sendable, Hashable {
    public var pool: String
    public var image: String
    /// ceph.conf of the cluster (default /etc/ceph/ceph.conf).
    public var conf: String
    /// Client id without "client." (default admin).
    public var id: String
    /// Keyring file; nil: what ceph.conf says.
    public var keyring: String?
    /// Several gateways write this image at once (`shared=yes`): it is kept without RBD's
    /// exclusive lock, which would otherwise move between the gateways on every write.
    public var shared = false

    public static let defaultConf = "/etc/ceph/ceph.conf"
    public static let defaultID = "admin"

    /// Parses "POOL/IMAGE" and the spec's options; nil with a reason when malformed.
    public static func parse(_ locator: String, options: [String: String]) -> Result<RBDLocation, RBDLocatorProblem> {
        let parts = locator.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            return .failure(RBDLocatorProblem(message: "'\(locator)' is not POOL/IMAGE"))
        }
        for part in parts where part.contains(where: { $0 == "@" || $0 == "\0" || $0 == "," || $0.isWhitespace }) {
            return .failure(RBDLocatorProblem(message: "'\(part)' may not contain '@', ',', spaces or NUL"))
        }
        var location = RBDLocation(pool: String(parts[0]), image: String(parts[1]),
                                   conf: options["conf"] ?? defaultConf, id: options["id"] ?? defaultID,
                                   keyring: options["keyring"])
        switch options["shared"]?.lowercased() {
        case nil, "no", "false", "0": break
        case "yes", "true", "1": location.shared = true
        case let other?: return .failure(RBDLocatorProblem(message: "shared= takes yes or no, not '\(other)'"))
        }
        return .success(location)
    }

    var clusterKey: String { "\(conf)|\(id)|\(keyring ?? "")" }
    public var description: String { "rbd:\(pool)/\(image)" }
}

public struct RBDLocatorProblem: Error, Sendable {
    public var message: String
}

/// One connection (`rados_t`) per cluster and client, shared by every image opened through
/// it, with one I/O context per pool. Connections live as long as the process: librados
/// keeps its threads and sessions warm for the next image.
final class RBDCluster: Sendable {
    /// Bounds on waiting for a cluster that does not answer (seconds): connect, monitor
    /// commands, and each OSD operation (an I/O then fails with ETIMEDOUT, which the engine
    /// answers with a retryable sense, instead of hanging the initiator).
    static let mountTimeout: UInt32 = 10
    static let monitorTimeout: UInt32 = 10
    /// Below the 30 s initiators give a command (Linux sd, open-iscsi), so a cluster outage
    /// reaches them as a retryable NOT READY rather than an abort.
    static let osdTimeout: UInt32 = 25

    private static let connected = Mutex<[String: RBDCluster]>([:])

    // librados handles may be used from any thread (its API is thread-safe).
    nonisolated(unsafe) private let handle: crbd_rados_t
    /// A pool's I/O context; librados lets any thread use it.
    private struct PoolContext: @unchecked Sendable {
        let raw: crbd_ioctx_t
    }

    private let pools = Mutex<[String: PoolContext]>([:])
    let name: String

    private init(handle: crbd_rados_t, name: String) {
        self.handle = handle
        self.name = name
    }

    /// The shared connection for this location's cluster and client, made on first use.
    /// `fresh`: the shared one was blocklisted; make a new one (the old one's images keep it).
    static func connection(for location: RBDLocation, fresh replacing: Bool = false) throws(BackstoreOpenError) -> RBDCluster {
        try RBDLibrary.load(for: location.description)
        // Connecting can take seconds: done outside the registry lock, the loser of a race closes its own.
        if !replacing, let existing = connected.withLock({ $0[location.clusterKey] }) { return existing }
        let fresh = try connect(location)
        return connected.withLock { clusters in
            if !replacing, let existing = clusters[location.clusterKey] {
                fresh.shutdown()
                return existing
            }
            clusters[location.clusterKey] = fresh
            return fresh
        }
    }

    private static func connect(_ location: RBDLocation) throws(BackstoreOpenError) -> RBDCluster {
        let what = location.description
        var cluster: crbd_rados_t?
        var rc = crbd_rados_create2(&cluster, nil, "client.\(location.id)", 0)
        guard rc == 0, let cluster else { throw RBDError.open(what, "cannot create a cluster handle for client.\(location.id)", rc) }
        func fail(_ message: String, _ rc: Int32) -> BackstoreOpenError {
            crbd_rados_shutdown(cluster)
            return RBDError.open(what, message, rc)
        }
        rc = crbd_rados_conf_read_file(cluster, location.conf)
        guard rc == 0 else { throw fail("cannot read the Ceph configuration \(location.conf)", rc) }
        if let keyring = location.keyring {
            guard access(keyring, R_OK) == 0 else { throw fail("cannot read the keyring \(keyring)", -errno) }
            rc = crbd_rados_conf_set(cluster, "keyring", keyring)
            guard rc == 0 else { throw fail("cannot use the keyring \(keyring)", rc) }
        }
        // No client-side cache (a gateway must not hold data another gateway cannot see),
        // and a discard zeroes partial objects too (UNMAP'd blocks then read as zeros).
        for (option, value) in [("rbd_cache", "false"), ("rbd_skip_partial_discard", "false")] {
            _ = crbd_rados_conf_set(cluster, option, value)
        }
        _ = crbd_rados_set_timeouts(cluster, mountTimeout, monitorTimeout, osdTimeout)
        rc = crbd_rados_connect(cluster)
        guard rc == 0 else {
            let why: String
            switch -rc {
            case ETIMEDOUT: why = "the cluster of \(location.conf) did not answer within \(mountTimeout) s"
            case EACCES, EPERM: why = "client.\(location.id) was refused by the cluster (wrong key or keyring?)"
            case ENOENT: why = "no key for client.\(location.id) (keyring missing?)"
            default: why = "cannot connect to the cluster of \(location.conf) as client.\(location.id)"
            }
            throw fail(why, rc)
        }
        return RBDCluster(handle: cluster, name: "\(location.conf) as client.\(location.id)")
    }

    /// The I/O context of a pool (kept for the cluster's life).
    func ioContext(pool: String, for what: String) throws(BackstoreOpenError) -> crbd_ioctx_t {
        if let context = pools.withLock({ $0[pool] }) { return context.raw }
        var context: crbd_ioctx_t?
        let rc = crbd_rados_ioctx_create(handle, pool, &context)
        guard rc == 0, let context else {
            throw RBDError.open(what, rc == -ENOENT ? "pool '\(pool)' does not exist" : "cannot open pool '\(pool)'", rc)
        }
        let fresh = PoolContext(raw: context)
        return pools.withLock { pools -> PoolContext in
            if let existing = pools[pool] {
                crbd_rados_ioctx_destroy(fresh.raw)
                return existing
            }
            pools[pool] = fresh
            return fresh
        }.raw
    }

    /// The librados handle, for calls that act on the whole connection (watch flushes).
    var rawHandle: crbd_rados_t { handle }

    /// This client's address as the cluster sees it (what a blocklist entry names).
    var clientAddress: String? {
        var buffer = [CChar](repeating: 0, count: 256)
        guard crbd_rados_getaddrs(handle, &buffer, buffer.count) == 0 else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func shutdown() {
        pools.withLock { pools in
            for (_, context) in pools { crbd_rados_ioctx_destroy(context.raw) }
            pools.removeAll()
        }
        crbd_rados_shutdown(handle)
    }
}

/// librbd and librados are loaded at run time (dlopen in CRBD): a host without Ceph runs
/// every other kind, and only an rbd LUN names the packages to install.
enum RBDLibrary {
    static func load(for what: String) throws(BackstoreOpenError) {
        var message = [CChar](repeating: 0, count: 512)
        let rc = crbd_load(&message, message.count)
        guard rc == 0 else {
            let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw BackstoreOpenError(.system(errno: -rc), path: what,
                                     message: "\(what): Ceph's libraries are not available: \(text)")
        }
    }
}

enum RBDError {
    static func open(_ what: String, _ message: String, _ rc: Int32) -> BackstoreOpenError {
        let reason: BackstoreOpenError.Reason = rc == -ENOENT ? .notFound : .system(errno: -rc)
        return BackstoreOpenError(reason, path: what, message: "\(what): \(message) (\(errnoText(-rc)))")
    }
}
