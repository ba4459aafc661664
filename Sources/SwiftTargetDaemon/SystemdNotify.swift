import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram per state to
/// the socket in $NOTIFY_SOCKET (a path, or an abstract name after '@'). A unit with
/// `Type=notify` is "started" at READY=1, "reloading" between RELOADING=1 and the next
/// READY=1, "stopping" at STOPPING=1. Outside systemd (no $NOTIFY_SOCKET) nothing is sent.
enum SystemdNotify {
    static func ready(status: String) { send("READY=1\nSTATUS=\(status)") }

    /// RELOADING=1 carries the monotonic time since systemd 253 (`Type=notify-reload`); older
    /// ones ignore it.
    static func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        send("RELOADING=1\nMONOTONIC_USEC=\(UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000)")
    }

    static func stopping() { send("STOPPING=1") }

    static func send(_ message: String) {
        guard let target = ProcessInfo.processInfo.environment["NOTIFY_SOCKET"], !target.isEmpty else { return }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(target.utf8)
        let abstract = path.first == UInt8(ascii: "@")
        if abstract { path[0] = 0 }
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else { return }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path) }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        // An abstract name's length counts exactly; a path's ends at its NUL.
        let length = MemoryLayout<sa_family_t>.size + path.count + (abstract ? 0 : 1)
        _ = message.withCString { text in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, text, strlen(text), Int32(MSG_NOSIGNAL), $0, socklen_t(length))
                }
            }
        }
    }
}
