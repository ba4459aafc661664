import Testing
import TCMU

@Suite struct RingCursorTests {
    let cmd = UInt32(TCMUProtocol.Opcode.command.rawValue)
    let pad = UInt32(TCMUProtocol.Opcode.pad.rawValue)

    @Test func walksEntriesAndWrapsAfterPad() throws {
        var c = RingCursor(ringSize: 1000, position: 880)
        // 880: a 112-byte command; 992: an 8-byte PAD to the end; 0: a command.
        let head: UInt32 = 120
        let e1 = try c.advance(lenOp: 112 | cmd, head: head)
        #expect(e1 == .init(offset: 880, length: 112, kind: .command))
        let e2 = try c.advance(lenOp: 8 | pad, head: head)
        #expect(e2.kind == .pad)
        #expect(c.position == 0)
        let e3 = try c.advance(lenOp: 120 | cmd, head: head)
        #expect(e3.offset == 0)
        #expect(c.isDrained(head: head))
    }

    @Test func classifiesTMRAndUnknownOpcodes() throws {
        var c = RingCursor(ringSize: 4096, position: 0)
        #expect(try c.advance(lenOp: 40 | 2, head: 100).kind == .taskManagement)
        #expect(try c.advance(lenOp: 16 | 5, head: 100).kind == .unknown(5))
        #expect(c.position == 56)
    }

    @Test func rejectsWhatTheKernelNeverWrites() {
        var c = RingCursor(ringSize: 1000, position: 992)
        #expect(throws: RingCursor.Malformed.zeroLength(at: 992)) { try c.advance(lenOp: cmd, head: 0) }
        #expect(throws: RingCursor.Malformed.crossesRingEnd(at: 992, length: 16)) { try c.advance(lenOp: 16 | cmd, head: 0) }
        var d = RingCursor(ringSize: 1000, position: 0)
        #expect(throws: RingCursor.Malformed.crossesHead(at: 0, length: 120, head: 112)) { try d.advance(lenOp: 120 | cmd, head: 112) }
        #expect(throws: RingCursor.Malformed.headOutOfRange(1000)) { try d.advance(lenOp: 8 | pad, head: 1000) }
        #expect(d.position == 0, "a failed advance does not move the cursor")
    }
}

@Suite struct CompletionQueueTests {
    @Test func outOfOrderStealsTheFirstCommandSlot() {
        var q = CompletionQueue<String>(ringSize: 1000, tail: 0, outOfOrder: true)
        q.enqueue(RingSlot(offset: 0, length: 112, commandID: 1))
        q.enqueue(RingSlot(offset: 112, length: 40, commandID: nil)) // TMR
        q.enqueue(RingSlot(offset: 152, length: 112, commandID: 2))
        #expect(q.drain().isEmpty)
        q.finish(2, "two")
        let r = q.drain()
        // Command 2 finished first: it takes slot 0, the TMR slot follows, slot 152 waits.
        #expect(r.map(\.slotOffset) == [0, 112])
        #expect(r[0].commandID == 2 && r[0].response == "two")
        #expect(r[1].commandID == nil)
        #expect(q.tail == 152)
        q.finish(1, "one")
        let r2 = q.drain()
        #expect(r2.count == 1 && r2[0].commandID == 1 && r2[0].newTail == 264)
        #expect(q.pendingSlots == 0 && q.pendingResponses == 0)
    }

    @Test func inOrderWaitsForTheSlotsOwnCommand() {
        var q = CompletionQueue<Int>(ringSize: 1000, tail: 900, outOfOrder: false)
        q.enqueue(RingSlot(offset: 900, length: 100, commandID: 7))
        q.enqueue(RingSlot(offset: 0, length: 112, commandID: 8))
        q.finish(8, 80)
        #expect(q.drain().isEmpty)
        q.finish(7, 70)
        let r = q.drain()
        #expect(r.map(\.commandID) == [7, 8])
        #expect(r.map(\.newTail) == [0, 112])
    }

    @Test func padAloneRetiresAtOnce() {
        var q = CompletionQueue<Int>(ringSize: 1000, tail: 992, outOfOrder: true)
        q.enqueue(RingSlot(offset: 992, length: 8, commandID: nil))
        #expect(q.drain().map(\.newTail) == [0])
    }
}
