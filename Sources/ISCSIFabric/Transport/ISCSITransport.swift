import SCSIEngine

/// How iSCSI names SCSI ports, for the engine (RFC 7143 §4.2.7, SPC-4 7.6.4.6): initiator port
/// `name,i,0xISID`, target port `name,t,0xTPGT`, protocol identifier 5.
public struct ISCSITransport: SCSITransport {
    /// PROTOCOL IDENTIFIER for iSCSI (SPC-4 7.6.1 table 444).
    public static let protocolIdentifier: UInt8 = 0x5
    /// TransportID format codes (SPC-4 7.6.4.6): the initiator's name, or its port's name.
    static let formatName: UInt8 = 0
    static let formatPortName: UInt8 = 1
    /// iSCSI names are at most 223 bytes (RFC 7143 §4.2.7.1); longer ones are not names.
    static let maxNameBytes = 223

    public init() {}

    public var protocolIdentifier: UInt8? { Self.protocolIdentifier }

    public func targetPortName(target: String, portGroup: UInt16) -> String? {
        target + ",t,0x" + Self.hex(UInt64(portGroup), digits: 4)
    }

    /// The initiator port name of an iSCSI I_T nexus.
    public static func initiatorPortName(_ nexus: ITNexus) -> String {
        nexus.initiatorName + ",i,0x" + hex(nexus.initiatorPortID, digits: 12)
    }

    /// Format 01b: the initiator port name, NUL terminated, padded to a multiple of 4 (at least 20 bytes).
    public func transportID(of nexus: ITNexus) -> [UInt8] {
        var name = Array(Self.initiatorPortName(nexus).utf8.prefix(Self.maxNameBytes + 17))
        name.append(0)
        while name.count % 4 != 0 || name.count < 16 { name.append(0) }
        let length = UInt16(clamping: name.count)
        return [Self.formatPortName << 6 | Self.protocolIdentifier, 0, UInt8(length >> 8), UInt8(length & 0xFF)] + name
    }

    public func parseTransportID(_ t: ArraySlice<UInt8>) -> ParsedTransportID? {
        guard t.count >= 8, let first = t.first, first & 0x0F == Self.protocolIdentifier else { return nil }
        let base = t.startIndex
        let declared = Int(t[base + 2]) << 8 | Int(t[base + 3])
        guard declared >= 4, declared % 4 == 0, 4 + declared <= t.count else { return nil }
        // The longest is "<223-byte name>,i,0x<12 hex digits>" and its NUL, padded to 4n.
        guard declared <= 244 else { return nil }
        let bytes = Array(t[(base + 4)..<(base + 4 + declared)].prefix { $0 != 0 })
        let length = 4 + declared
        switch first >> 6 {
        case Self.formatName:
            guard !bytes.isEmpty, bytes.count <= Self.maxNameBytes, !bytes.contains(UInt8(ascii: ",")) else { return nil }
            return ParsedTransportID(initiatorName: String(decoding: bytes, as: UTF8.self), initiatorPortID: nil, length: length)
        case Self.formatPortName:
            // "<name>,i,0x<ISID>" (the separator's letters in either case).
            let marker = Array(",i,0x".utf8)
            guard bytes.count > marker.count,
                  let at = (1...(bytes.count - marker.count)).first(where: { i in
                      zip(bytes[i..<(i + marker.count)], marker).allSatisfy { $0 | 0x20 == $1 | 0x20 } }),
                  let isid = UInt64(String(decoding: bytes[(at + marker.count)...], as: UTF8.self), radix: 16),
                  isid < 1 << 48, at <= Self.maxNameBytes else { return nil }
            return ParsedTransportID(initiatorName: String(decoding: bytes[..<at], as: UTF8.self), initiatorPortID: isid, length: length)
        default:
            return nil
        }
    }

    static func hex(_ value: UInt64, digits: Int) -> String {
        let s = String(value, radix: 16)
        return s.count >= digits ? s : String(repeating: "0", count: digits - s.count) + s
    }
}
