import Foundation

/// Which LUNs the initiators a map names see, and at which numbers (LIO's mapped LUNs, SCST's
/// ini_groups). The first map whose patterns match an initiator's name decides what it sees;
/// an initiator no map names sees every LUN of the target at its own number.
public struct LUNMapping: Codable, Sendable, Hashable {
    /// Initiator name patterns: `*` any run of characters, `?` one, compared without case.
    public var initiators: [String]
    public var luns: [MappedLUN]
    public var comment: String?

    public init(initiators: [String], luns: [MappedLUN], comment: String? = nil) {
        self.initiators = initiators
        self.luns = luns
        self.comment = comment
    }

    enum CodingKeys: String, CodingKey { case initiators, luns, comment }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        initiators = try c.decode([String].self, forKey: .initiators)
        luns = try c.decodeIfPresent([MappedLUN].self, forKey: .luns) ?? []
        comment = try c.decodeIfPresent(String.self, forKey: .comment)
    }
}

/// One LUN of a map: the target's LUN `lun`, seen as `mappedLun`.
public struct MappedLUN: Codable, Sendable, Hashable {
    /// The number the initiators of the map use, 0...16383.
    public var mappedLun: Int
    /// The target's LUN (its `luns[].id`).
    public var lun: Int
    /// Read-only for these initiators, whatever the LUN allows others.
    public var readOnly: Bool

    public init(mappedLun: Int, lun: Int, readOnly: Bool = false) {
        self.mappedLun = mappedLun
        self.lun = lun
        self.readOnly = readOnly
    }

    enum CodingKeys: String, CodingKey { case mappedLun, lun, readOnly }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mappedLun = try c.decode(Int.self, forKey: .mappedLun)
        lun = try c.decode(Int.self, forKey: .lun)
        readOnly = try c.decodeIfPresent(Bool.self, forKey: .readOnly) ?? false
    }
}
