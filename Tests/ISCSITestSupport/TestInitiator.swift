import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A deliberately small iSCSI initiator over a blocking TCP socket, independent of the
/// target's own codec, so end-to-end tests check real bytes on a real connection.
public final class TestInitiator {
    public struct Received {
        public var header: [UInt8]
        public var data: [UInt8]
        public var opcode: UInt8 { header[0] & 0x3F }
        public var flags: UInt8 { header[1] }
        public func u32(_ offset: Int) -> UInt32 {
            header[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
        }
        public func u16(_ offset: Int) -> UInt16 {
            UInt16(header[offset]) << 8 | UInt16(header[offset + 1])
        }
        public var text: [String: String] {
            var result: [String: String] = [:]
            for pair in data.split(separator: 0) {
                let s = String(decoding: pair, as: UTF8.self)
                if let eq = s.firstIndex(of: "=") { result[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            }
            return result
        }
    }

    public enum Failure: Error, Equatable { case connect(Int32), closed, io(Int32) }

    public let fd: Int32
    public var cmdSN: UInt32 = 1
    public var expStatSN: UInt32 = 0
    public var itt: UInt32 = 0x100
    public var isid: UInt64 = 0x8000_1234_5678

    public init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { close(fd); throw Failure.connect(errno) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    public static func text(_ pairs: [(String, String)]) -> [UInt8] {
        pairs.flatMap { Array("\($0.0)=\($0.1)".utf8) + [0] }
    }

    public func nextTag() -> UInt32 {
        itt += 1
        return itt
    }

    /// Writes a PDU: 48-byte header (DataSegmentLength filled in here) + padded data.
    public func send(header: [UInt8], data: [UInt8] = []) throws {
        precondition(header.count == 48)
        var bytes = header
        bytes[5] = UInt8(data.count >> 16 & 0xFF)
        bytes[6] = UInt8(data.count >> 8 & 0xFF)
        bytes[7] = UInt8(data.count & 0xFF)
        bytes += data
        bytes += [UInt8](repeating: 0, count: (4 - data.count % 4) % 4)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw Failure.io(errno) }
            offset += n
        }
    }

    public func receive() throws -> Received {
        let header = try read(count: 48)
        let length = Int(header[5]) << 16 | Int(header[6]) << 8 | Int(header[7])
        let ahs = Int(header[4]) * 4
        _ = try read(count: ahs)
        let padded = (length + 3) & ~3
        let data = try read(count: padded)
        let received = Received(header: header, data: Array(data.prefix(length)))
        // Track StatSN for status-bearing PDUs.
        if received.opcode != 0x31 { expStatSN = max(expStatSN, received.u32(24) &+ 1) }
        return received
    }

    private func read(count: Int) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let n = buffer[offset...].withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n == 0 { throw Failure.closed }
            guard n > 0 else { throw Failure.io(errno) }
            offset += n
        }
        return buffer
    }

    public static func put(_ value: UInt32, _ header: inout [UInt8], at offset: Int) {
        for i in 0..<4 { header[offset + i] = UInt8(value >> (24 - 8 * UInt32(i)) & 0xFF) }
    }

    public static func put16(_ value: UInt16, _ header: inout [UInt8], at offset: Int) {
        header[offset] = UInt8(value >> 8)
        header[offset + 1] = UInt8(value & 0xFF)
    }

    public func loginRequest(csg: UInt8, nsg: UInt8, transit: Bool, keys: [(String, String)]) throws -> Received {
        var header = [UInt8](repeating: 0, count: 48)
        header[0] = 0x43
        header[1] = (transit ? 0x80 : 0) | csg << 2 | nsg
        for i in 0..<6 { header[8 + i] = UInt8(isid >> (40 - 8 * UInt64(i)) & 0xFF) }
        Self.put(0x10, &header, at: 16)
        Self.put(cmdSN, &header, at: 24)
        Self.put(expStatSN, &header, at: 28)
        try send(header: header, data: Self.text(keys))
        return try receive()
    }

    /// Security (AuthMethod=None) then operational negotiation; returns the final response.
    public func login(target: String?, initiator: String = "iqn.2026-11.org.test:initiator", extra: [(String, String)] = []) throws -> Received {
        var keys = [("InitiatorName", initiator), ("SessionType", target == nil ? "Discovery" : "Normal"), ("AuthMethod", "None")]
        if let target { keys.append(("TargetName", target)) }
        let first = try loginRequest(csg: 0, nsg: 1, transit: true, keys: keys)
        guard first.header[36] == 0 else { return first }
        let sent = [
            ("HeaderDigest", "None"), ("DataDigest", "None"), ("InitialR2T", "Yes"), ("ImmediateData", "Yes"),
            ("MaxRecvDataSegmentLength", "65536"), ("MaxBurstLength", "262144"), ("FirstBurstLength", "65536"),
        ] + extra
        var response = try loginRequest(csg: 1, nsg: 3, transit: true, keys: sent)
        var negotiated = Set(sent.map(\.0))
        // The target may offer keys of its own (T=0); accept them as offered and go on.
        var rounds = 0
        let declarative: Set = ["MaxRecvDataSegmentLength", "TargetPortalGroupTag", "TargetAlias", "TargetAddress"]
        while response.header[36] == 0, response.flags & 0x80 == 0, rounds < 4 {
            let answers = response.text.filter { !declarative.contains($0.key) && !negotiated.contains($0.key) }
                .map { ($0.key, $0.value) }
            negotiated.formUnion(answers.map(\.0))
            response = try loginRequest(csg: 1, nsg: 3, transit: true, keys: answers)
            rounds += 1
        }
        return response
    }

    /// A SCSI Command PDU.
    public func command(cdb: [UInt8], lun: UInt8 = 0, read: Int = 0, write: Int = 0, immediate: [UInt8] = [], final: Bool = true, tag: UInt32? = nil) throws -> UInt32 {
        let tag = tag ?? nextTag()
        var header = [UInt8](repeating: 0, count: 48)
        header[0] = 0x01
        header[1] = (final ? 0x80 : 0) | (read > 0 ? 0x40 : 0) | (write > 0 ? 0x20 : 0) | 0x01
        header[9] = lun
        Self.put(tag, &header, at: 16)
        Self.put(UInt32(max(read, write)), &header, at: 20)
        Self.put(cmdSN, &header, at: 24)
        cmdSN &+= 1
        Self.put(expStatSN, &header, at: 28)
        for (i, byte) in cdb.enumerated() { header[32 + i] = byte }
        try send(header: header, data: immediate)
        return tag
    }

    public func dataOut(tag: UInt32, ttt: UInt32, dataSN: UInt32, offset: Int, data: [UInt8], final: Bool) throws {
        var header = [UInt8](repeating: 0, count: 48)
        header[0] = 0x05
        header[1] = final ? 0x80 : 0
        Self.put(tag, &header, at: 16)
        Self.put(ttt, &header, at: 20)
        Self.put(expStatSN, &header, at: 28)
        Self.put(dataSN, &header, at: 36)
        Self.put(UInt32(offset), &header, at: 40)
        try send(header: header, data: data)
    }
}
