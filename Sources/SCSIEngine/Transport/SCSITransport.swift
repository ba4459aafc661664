/// What the engine must know of the fabric that carries its commands, and nothing more: how
/// the transport protocol names ports (SPC-4 7.6.4 TransportIDs, 7.7.3 device identification).
/// The iSCSI fabric gives its own (`ISCSITransport`); a new fabric gives another, and the
/// engine needs no change.
public protocol SCSITransport: Sendable {
    /// PROTOCOL IDENTIFIER (SPC-4 7.6.1) of the port designators in VPD 0x83 and of TransportIDs;
    /// nil where the engine cannot know it (the TCMU handler behind LIO's fabrics): the
    /// designators then carry PIV 0 and no target port name.
    var protocolIdentifier: UInt8? { get }
    /// The SCSI name string of a target port (VPD 0x83 designator type 8), nil for none.
    func targetPortName(target: String, portGroup: UInt16) -> String?
    /// The TransportID naming the initiator port of a nexus (PR IN READ FULL STATUS).
    func transportID(of nexus: ITNexus) -> [UInt8]
    /// The initiator port(s) the TransportID at the start of `bytes` names, and its length;
    /// nil when it is not a valid TransportID of this transport.
    func parseTransportID(_ bytes: ArraySlice<UInt8>) -> ParsedTransportID?
}

/// What one TransportID names.
public struct ParsedTransportID: Sendable, Equatable {
    public var initiatorName: String
    /// The initiator port within the initiator; nil: every port of that initiator.
    public var initiatorPortID: UInt64?
    /// Bytes the TransportID takes (a list of them follows one another).
    public var length: Int

    public init(initiatorName: String, initiatorPortID: UInt64?, length: Int) {
        self.initiatorName = initiatorName
        self.initiatorPortID = initiatorPortID
        self.length = length
    }
}

/// A transport the engine cannot name ports of: no port designators' protocol, no TransportIDs
/// (so no REGISTER AND MOVE or SPEC_I_PT). The default, and what the TCMU handler uses.
public struct UnnamedTransport: SCSITransport {
    public init() {}
    public var protocolIdentifier: UInt8? { nil }
    public func targetPortName(target: String, portGroup: UInt16) -> String? { nil }
    public func transportID(of nexus: ITNexus) -> [UInt8] { [] }
    public func parseTransportID(_ bytes: ArraySlice<UInt8>) -> ParsedTransportID? { nil }
}
