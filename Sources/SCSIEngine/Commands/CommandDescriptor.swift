/// What the engine knows of one command before it runs: the single place an operation code
/// (and service action) is described. Dispatch, the reservation and unit-attention checks,
/// REPORT SUPPORTED OPERATION CODES, the fast paths and the statistics all read it, so a new
/// command is one `CommandTable` entry plus its handler (as LIO's opcode descriptor table).
final class CommandDescriptor: Sendable {
    typealias Handler = @Sendable (LogicalUnit, CommandContext, CommandSnapshot) throws(SCSIError) -> SCSICommandResult

    /// Data transfer of the command (SAM-5 5.4): informative, the fabric carries the buffers.
    enum DataDirection: Sendable { case none, toDevice, fromDevice }

    /// LUs on which the command exists; elsewhere it answers INVALID OPERATION CODE (or INVALID
    /// FIELD IN CDB for a service action) and is not reported.
    enum Availability: Sendable {
        case always
        case thinProvisioned
        /// The store can promise atomic writes (WRITE ATOMIC).
        case atomicWrites
    }

    /// Paths besides an I/O thread the command may take.
    struct FastPaths: OptionSet, Sendable {
        let rawValue: UInt8
        /// Runs on the event loop when its data sits in the page cache (the reads).
        static let pageCacheRead = FastPaths(rawValue: 1)
        /// A CompletingBlockStore may answer it by callback (the plain reads and writes).
        static let callback = FastPaths(rawValue: 2)
    }

    let opcode: UInt8
    /// Nil for an operation code without service actions; else the value of byte 1 bits 4-0.
    let serviceAction: UInt8?
    let name: String
    /// CDB length; a shorter CDB is an invalid operation code.
    let length: Int
    /// CDB USAGE DATA (SPC-4 6.35.3): the bits the device server looks at.
    let usage: [UInt8]
    let direction: DataDirection
    /// Kind of medium access for reservation conflicts (SPC-4 5.13.1 table 74).
    let access: MediumAccess
    /// Replaces `access` where the CDB decides it (START STOP UNIT).
    let accessFromCDB: (@Sendable (ByteReader) -> MediumAccess)?
    /// False for INQUIRY, REPORT LUNS, REQUEST SENSE (SAM-5 5.14).
    let reportsUnitAttention: Bool
    /// Commands a non-holder may still run under RESERVE(6/10) (SPC-2 5.5.1 table 10).
    let allowedUnderReserve: Bool
    /// INQUIRY, REPORT LUNS and REQUEST SENSE run while a sanitize does (SBC-4 4.11.4), and
    /// SANITIZE decides for itself.
    let allowedDuringSanitize: Bool
    let statisticsClass: LUNStatisticsRecorder.CommandClass
    let availability: Availability
    let fastPaths: FastPaths
    let handler: Handler

    /// `byte1Usage` overrides the usage bits of byte 1 (flags the handler reads); by default
    /// every bit between the opcode and the control byte counts, and a service action field
    /// is bits 4-0 of byte 1.
    init(_ opcode: UInt8, serviceAction: UInt8? = nil, _ name: String, length: Int, direction: DataDirection = .none,
         access: MediumAccess, accessFromCDB: (@Sendable (ByteReader) -> MediumAccess)? = nil,
         reportsUnitAttention: Bool = true, allowedUnderReserve: Bool = false, allowedDuringSanitize: Bool = false,
         statistics: LUNStatisticsRecorder.CommandClass = .other, availability: Availability = .always,
         fastPaths: FastPaths = [], byte1Usage: UInt8? = nil, handler: @escaping Handler) {
        self.opcode = opcode
        self.serviceAction = serviceAction
        self.name = name
        self.length = length
        var u = [UInt8](repeating: 0xFF, count: length)
        u[0] = opcode
        u[length - 1] = 0x00 // control byte: neither NACA nor LINK
        if serviceAction != nil { u[1] = 0x1F }
        if let byte1Usage { u[1] = byte1Usage }
        usage = u
        self.direction = direction
        self.access = access
        self.accessFromCDB = accessFromCDB
        self.reportsUnitAttention = reportsUnitAttention
        self.allowedUnderReserve = allowedUnderReserve
        self.allowedDuringSanitize = allowedDuringSanitize
        statisticsClass = statistics
        self.availability = availability
        self.fastPaths = fastPaths
        self.handler = handler
    }

    @inline(__always)
    func access(_ cdb: ByteReader) -> MediumAccess { accessFromCDB?(cdb) ?? access }

    func isAvailable(on unit: LogicalUnit) -> Bool {
        switch availability {
        case .always: return true
        case .thinProvisioned: return unit.isThin
        case .atomicWrites: return unit.atomicTransferBlocks > 0
        }
    }
}

/// The table indexed by operation code, built once from `CommandTable.commands`.
enum CommandLookup {
    enum Found {
        case command(CommandDescriptor)
        /// The operation code exists but not with this service action (INVALID FIELD IN CDB, byte 1).
        case unknownServiceAction
        case unknownOpcode
    }

    /// The descriptors of one operation code: one without a service action, or one per service
    /// action. A struct rather than an enum with payloads: a multi-payload enum keeps its case in
    /// the spare bits of the pointers, which hides them from LeakSanitizer's scan of the globals.
    private struct Slot: Sendable {
        var commands: [CommandDescriptor] = []
        var hasServiceActions = false
    }

    private static let slots: [Slot] = {
        var s = [Slot](repeating: Slot(), count: 256)
        for c in CommandTable.commands {
            let i = Int(c.opcode)
            let fresh = s[i].commands.isEmpty
            let takesServiceAction = c.serviceAction != nil
                && (fresh || s[i].hasServiceActions)
                && !s[i].commands.contains(where: { $0.serviceAction == c.serviceAction })
            precondition(fresh || takesServiceAction, "CommandTable: opcode \(c.opcode) described twice")
            s[i].commands.append(c)
            s[i].hasServiceActions = c.serviceAction != nil
        }
        return s
    }()

    /// Per operation code (its service actions share one: none of them reads or writes blocks).
    private static let classes: [LUNStatisticsRecorder.CommandClass] = slots.map {
        $0.hasServiceActions ? .other : ($0.commands.first?.statisticsClass ?? .other)
    }

    @inline(__always)
    static func statisticsClass(_ opcode: UInt8) -> LUNStatisticsRecorder.CommandClass { classes[Int(opcode)] }

    @inline(__always)
    static func find(_ cdb: ByteReader) -> Found {
        // Read in place: no copy of the slot (and its array) per command.
        let i = Int(cdb[0])
        if !slots[i].hasServiceActions {
            guard let c = slots[i].commands.first else { return .unknownOpcode }
            return .command(c)
        }
        let sa = cdb[1] & 0x1F
        for c in slots[i].commands where c.serviceAction == sa { return .command(c) }
        return .unknownServiceAction
    }

    /// The descriptor of a CDB, nil for an unknown operation code or service action.
    @inline(__always)
    static func descriptor(_ cdb: ByteReader) -> CommandDescriptor? {
        if case .command(let c) = find(cdb) { return c }
        return nil
    }

    /// The descriptor of a CDB in raw bytes (the fast paths and the statistics).
    @inline(__always)
    static func descriptor(_ cdb: UnsafeRawBufferPointer) -> CommandDescriptor? {
        descriptor(ByteReader(bytes: cdb))
    }

    static func hasServiceActions(_ opcode: UInt8) -> Bool {
        slots[Int(opcode)].hasServiceActions
    }

    static func isKnown(_ opcode: UInt8) -> Bool {
        !slots[Int(opcode)].commands.isEmpty
    }
}
