/// A ring slot waiting to be retired (given back to the kernel by moving `cmd_tail`).
public struct RingSlot: Sendable, Equatable {
    public var offset: UInt32
    public var length: UInt32
    /// The command the kernel put there; nil for PAD, TMR and unknown entries, which are
    /// retired as soon as they reach the tail.
    public var commandID: UInt16?

    public init(offset: UInt32, length: UInt32, commandID: UInt16?) {
        self.offset = offset
        self.length = length
        self.commandID = commandID
    }
}

/// One slot given back: write `response` for `commandID` into the slot (when there is
/// one), then publish `newTail`.
public struct Retirement<Response: Sendable>: Sendable {
    public var slotOffset: UInt32
    public var commandID: UInt16?
    public var response: Response?
    public var newTail: UInt32
}

/// Decides which finished command goes into which ring slot, and how far `cmd_tail` moves.
///
/// The kernel retires slots strictly in ring order from `cmd_tail`. With out-of-order
/// completion (`CAP_OOOC`) any finished command may take the first command slot at the
/// tail ("steal": the kernel reads only cmd_id/uflags/rsp from a slot); without it a slot
/// waits for its own command. Only slots the reader has already decoded are ever enqueued,
/// so a response never overwrites a request that was not copied out yet.
public struct CompletionQueue<Response: Sendable>: Sendable {
    public let ringSize: UInt32
    public let outOfOrder: Bool
    /// `cmd_tail` after the retirements handed out so far.
    public private(set) var tail: UInt32

    private var slots: [RingSlot] = []
    private var slotHead = 0
    private var finishedInOrder: [(UInt16, Response)] = []
    private var finishedHead = 0
    private var finishedByID: [UInt16: Response] = [:]

    public init(ringSize: UInt32, tail: UInt32, outOfOrder: Bool) {
        self.ringSize = ringSize
        self.tail = tail
        self.outOfOrder = outOfOrder
    }

    /// Slots decoded but not yet retired.
    public var pendingSlots: Int { slots.count - slotHead }
    /// Finished commands waiting for a slot.
    public var pendingResponses: Int { (finishedInOrder.count - finishedHead) + finishedByID.count }

    /// A slot the reader decoded, in ring order.
    public mutating func enqueue(_ slot: RingSlot) {
        precondition(slot.offset == expectedNextOffset, "slots must be enqueued in ring order")
        slots.append(slot)
    }

    private var expectedNextOffset: UInt32 {
        guard let last = slots.last, slotHead < slots.count else { return tail }
        return (last.offset + last.length) % ringSize
    }

    /// A command finished with `response`.
    public mutating func finish(_ commandID: UInt16, _ response: Response) {
        if outOfOrder {
            finishedInOrder.append((commandID, response))
        } else {
            finishedByID[commandID] = response
        }
    }

    /// The retirements possible now, in ring order.
    public mutating func drain() -> [Retirement<Response>] {
        var out: [Retirement<Response>] = []
        while slotHead < slots.count {
            let slot = slots[slotHead]
            var id: UInt16? = nil
            var response: Response? = nil
            if let own = slot.commandID {
                if outOfOrder {
                    guard finishedHead < finishedInOrder.count else { break }
                    (id, response) = finishedInOrder[finishedHead]
                    finishedHead += 1
                } else {
                    guard let r = finishedByID.removeValue(forKey: own) else { break }
                    (id, response) = (own, r)
                }
            }
            slotHead += 1
            tail = (slot.offset + slot.length) % ringSize
            out.append(Retirement(slotOffset: slot.offset, commandID: id, response: response, newTail: tail))
        }
        compact()
        return out
    }

    /// Drops everything (after a ring reset the kernel has completed all of it) and
    /// restarts at `tail`.
    public mutating func reset(tail: UInt32) {
        self = CompletionQueue(ringSize: ringSize, tail: tail, outOfOrder: outOfOrder)
    }

    private mutating func compact() {
        if slotHead > 1024, slotHead * 2 > slots.count {
            slots.removeFirst(slotHead)
            slotHead = 0
        }
        if finishedHead > 1024, finishedHead * 2 > finishedInOrder.count {
            finishedInOrder.removeFirst(finishedHead)
            finishedHead = 0
        }
    }
}
