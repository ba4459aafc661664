/// What to open: the `--lun kind:path,size=…` of the command line or a config entry.
public struct BackstoreSpec: Sendable, Equatable {
    public var kind: BackstoreKind
    public var path: String
    /// Size for a new image; must match an existing one when given.
    public var size: UInt64?
    public var readOnly: Bool
    /// O_DIRECT with aligned buffers (raw devices only).
    public var directIO: Bool

    public init(kind: BackstoreKind, path: String, size: UInt64? = nil, readOnly: Bool = false, directIO: Bool = false) {
        self.kind = kind
        self.path = path
        self.size = size
        self.readOnly = readOnly
        self.directIO = directIO
    }
}

/// Opens (creating where asked) the store a spec names. Errors say what is wrong with
/// which path, for an admin to read.
public func openBackstore(_ spec: BackstoreSpec) throws -> any BlockStore {
    fatalError("Backstores: not implemented yet")
}
