import CRBD
#if canImport(Glibc)
import Glibc
#endif

/// A pool's images, for the admin faces' image picker (what `rbd ls POOL` shows).
public enum RBDPool {
    /// The names of the images in `pool`, sorted; `options` as for an rbd LUN (`conf`, `id`,
    /// `keyring`). Throws the same admin-facing errors as opening a LUN (no libraries, no
    /// cluster, no such pool), within the same time bounds.
    public static func imageNames(pool: String, options: [String: String]) throws(BackstoreOpenError) -> [String] {
        let location: RBDLocation
        switch RBDLocation.parse("\(pool)/-", options: options) {
        case .success(let l): location = l
        case .failure(let problem):
            throw BackstoreOpenError(.system(errno: EINVAL), path: "rbd:\(pool)", message: "rbd pool \(pool): \(problem.message)")
        }
        let what = "rbd pool \(pool)"
        let cluster = try RBDCluster.connection(for: location)
        let io = try cluster.ioContext(pool: pool, for: what)
        var size = 4096
        for _ in 0..<8 {
            var buffer = [CChar](repeating: 0, count: size)
            var used = size
            let rc = crbd_list(io, &buffer, &used)
            if rc == -ERANGE && used > size { size = used; continue }
            guard rc >= 0 else { throw RBDError.open(what, "cannot list the images", rc) }
            let bytes = buffer.prefix(max(0, min(Int(rc), buffer.count))).map { UInt8(bitPattern: $0) }
            return bytes.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.sorted()
        }
        throw RBDError.open(what, "the image list keeps growing", -EAGAIN)
    }
}
