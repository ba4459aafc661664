/// The session's command numbering window (RFC 7143 §4.2.2.1, §3.2.2.1): non-immediate
/// commands are delivered in CmdSN order; ExpCmdSN/MaxCmdSN tell the initiator how far it
/// may go. MaxCmdSN shrinks while commands are in flight so a fast initiator cannot queue
/// unbounded work. Serial number arithmetic per RFC 1982.
struct CommandWindow<Item> {
    enum Disposition: Equatable {
        /// Deliver now (immediate, or the next in order).
        case deliver
        /// Held until the gap before it is filled.
        case held
        /// Outside the window or a duplicate: silently ignored (§3.2.2.1).
        case ignored
    }

    private(set) var expCmdSN: UInt32
    /// Maximum commands in flight plus waiting.
    let depth: UInt32
    /// Commands delivered but not yet completed.
    private(set) var inFlight: UInt32 = 0
    private var held: [UInt32: Item] = [:]

    init(expCmdSN: UInt32, depth: UInt32) {
        self.expCmdSN = expCmdSN
        self.depth = max(depth, 1)
    }

    var maxCmdSN: UInt32 {
        expCmdSN &+ (depth - min(inFlight, depth)) &- 1
    }

    /// Classifies an arriving command. Non-immediate commands that are delivered advance ExpCmdSN.
    mutating func receive(cmdSN: UInt32, immediate: Bool, item: Item) -> Disposition {
        if immediate { return .deliver }
        if cmdSN == expCmdSN {
            expCmdSN &+= 1
            return .deliver
        }
        // In window and ahead of ExpCmdSN: hold it (a gap from a dropped PDU).
        let ahead = cmdSN &- expCmdSN
        if ahead < 0x8000_0000, serialLessOrEqual(cmdSN, maxCmdSN), held[cmdSN] == nil {
            held[cmdSN] = item
            return .held
        }
        return .ignored
    }

    /// The held command that is next in order, if it has arrived; advances ExpCmdSN.
    mutating func nextHeld() -> Item? {
        guard let item = held.removeValue(forKey: expCmdSN) else { return nil }
        expCmdSN &+= 1
        return item
    }

    mutating func commandStarted() { inFlight += 1 }
    mutating func commandFinished() { inFlight -= min(inFlight, 1) }

    private func serialLessOrEqual(_ a: UInt32, _ b: UInt32) -> Bool {
        a == b || (b &- a) < 0x8000_0000
    }
}
