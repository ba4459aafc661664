import CTCMU
import Synchronization
import Testing
import TCMU
#if canImport(Glibc)
import Glibc
#endif

/// Ring server against the kernel simulator and the real SCSI engine.
@Suite struct RingServerTests {
    func collect(_ sim: KernelRingSimulator, count: Int) -> [KernelRingSimulator.Completion] {
        var out: [KernelRingSimulator.Completion] = []
        var waited = 0
        while out.count < count && waited < 100 {
            if !sim.waitForKick(timeoutMS: 100) { waited += 1 }
            sim.retire { out.append($0) }
        }
        return out
    }

    func bytes(_ c: KernelRingSimulator.Completion) -> [UInt8] {
        var out: [UInt8] = []
        var left = c.gatheredLength
        for s in c.dataSegments where left > 0 {
            let n = min(left, s.length)
            out += UnsafeRawBufferPointer(start: c.data.baseAddress! + s.offset, count: n)
            left -= n
        }
        return out
    }

    @Test func writeThenReadBackThroughTheEngine() throws {
        let sim = KernelRingSimulator()
        let store = UnlockedMemoryStore(byteCount: 1 << 20)
        let server = try RingServer(name: "t", ring: sim.handlerRing(), signalFD: sim.handlerFD,
                                    executor: makeEngineExecutor(store: store))
        defer { server.stop() }
        // First command: POWER ON unit attention (CHECK CONDITION 06/29/00).
        _ = sim.submit(cdb: CDBs.testUnitReady, length: 0, isRead: false, tag: 0)
        sim.kick()
        let ua = collect(sim, count: 1)
        #expect(ua.first?.status == 0x02 && ua.first?.sense[12] == 0x29)

        let payload = (0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        _ = sim.submit(cdb: CDBs.write10(lba: 10, blocks: 16), length: 8192, isRead: false, tag: 1) { buf, at in
            buf.copyBytes(from: payload[at ..< at + buf.count])
        }
        sim.kick()
        #expect(collect(sim, count: 1).first?.status == 0)
        #expect(Array(UnsafeRawBufferPointer(rebasing: store.bytes[5120 ..< 5120 + 8192])) == payload)

        _ = sim.submit(cdb: CDBs.read16(lba: 10, blocks: 16), length: 8192, isRead: true, tag: 2)
        sim.kick()
        let r = collect(sim, count: 1)
        #expect(r.first?.status == 0)
        #expect(r.first?.readLength == 8192)
        #expect(r.first.map(bytes) == payload)
    }

    @Test func shortDataInReportsReadLength() throws {
        let sim = KernelRingSimulator()
        let store = UnlockedMemoryStore(byteCount: 1 << 20)
        let server = try RingServer(name: "t", ring: sim.handlerRing(), signalFD: sim.handlerFD,
                                    executor: makeEngineExecutor(store: store))
        defer { server.stop() }
        _ = sim.submit(cdb: CDBs.testUnitReady, length: 0, isRead: false, tag: 0)
        // INQUIRY with a 255-byte allocation: 36 bytes of data, the rest is a residual.
        _ = sim.submit(cdb: CDBs.inquiry(allocation: 255), length: 255, isRead: true, tag: 1)
        sim.kick()
        let c = collect(sim, count: 2).first { $0.tag == 1 }
        #expect(c?.status == 0)
        #expect(c.map { Int($0.readLength ?? 0) } ?? 0 >= 36)
        #expect(c.map { Int($0.readLength ?? 0) } ?? 255 < 255)
    }

    @Test func withoutReadLengthTheRestOfDataInIsZeroed() throws {
        let sim = KernelRingSimulator(capabilities: [.outOfOrderCompletion])
        let store = UnlockedMemoryStore(byteCount: 1 << 20)
        let server = try RingServer(name: "t", ring: sim.handlerRing(), signalFD: sim.handlerFD,
                                    executor: makeEngineExecutor(store: store))
        defer { server.stop() }
        _ = sim.submit(cdb: CDBs.testUnitReady, length: 0, isRead: false, tag: 0)
        // Stale bytes in the reused data-area block must not reach the initiator.
        memset(sim.base + sim.dataOffset, 0xEE, 4096)
        _ = sim.submit(cdb: CDBs.inquiry(allocation: 255), length: 255, isRead: true, tag: 1)
        sim.kick()
        let c = collect(sim, count: 2).first { $0.tag == 1 }
        #expect(c?.readLength == nil)
        let data = c.map(bytes) ?? []
        #expect(data.count == 255)
        #expect(data.suffix(255 - 96).allSatisfy { $0 == 0 })
    }

    @Test func unknownEntryGetsUnknownOpFlagAndIsRetired() throws {
        let sim = KernelRingSimulator()
        let store = UnlockedMemoryStore(byteCount: 1 << 20)
        let server = try RingServer(name: "t", ring: sim.handlerRing(), signalFD: sim.handlerFD,
                                    executor: makeEngineExecutor(store: store))
        defer { server.stop() }
        let at = sim.head
        #expect(sim.submitUnknownEntry(op: 5))
        _ = sim.submit(cdb: CDBs.testUnitReady, length: 0, isRead: false, tag: 1)
        sim.kick()
        #expect(collect(sim, count: 1).count == 1)
        #expect(sim.uflags(atRingPosition: at) & TCMUProtocol.UserFlags.unknownOp.rawValue != 0)
        #expect(server.statistics.unknownEntries == 1)
        #expect(!sim.broken)
    }

    @Test func inOrderKernelGetsCompletionsInRingOrder() throws {
        let sim = KernelRingSimulator(capabilities: [.readLength])
        // Reads of the first 64 KiB are slow, so later fast commands finish first.
        let store = UnlockedMemoryStore(byteCount: 1 << 20, slowBelow: 65536, slowMicroseconds: 20_000)
        let server = try RingServer(name: "t", ring: sim.handlerRing(), signalFD: sim.handlerFD,
                                    executor: makeEngineExecutor(store: store))
        defer { server.stop() }
        _ = sim.submit(cdb: CDBs.testUnitReady, length: 0, isRead: false, tag: 0)
        _ = sim.submit(cdb: CDBs.read10(lba: 0, blocks: 1), length: 512, isRead: true, tag: 1)
        for t in 2..<10 { _ = sim.submit(cdb: CDBs.read10(lba: UInt32(1000 + t), blocks: 1), length: 512, isRead: true, tag: t) }
        sim.kick()
        let done = collect(sim, count: 10)
        #expect(done.map(\.tag) == Array(0..<10))
        #expect(sim.stolenSlots == 0)
    }

    @Test func outOfOrderLetsFastCommandsOvertakeSlowOnes() throws {
        let sim = KernelRingSimulator()
        let store = UnlockedMemoryStore(byteCount: 1 << 20, slowBelow: 65536, slowMicroseconds: 50_000)
        let server = try RingServer(name: "t", ring: sim.handlerRing(), signalFD: sim.handlerFD,
                                    executor: makeEngineExecutor(store: store))
        defer { server.stop() }
        _ = sim.submit(cdb: CDBs.testUnitReady, length: 0, isRead: false, tag: 0)
        sim.kick()
        _ = collect(sim, count: 1)
        _ = sim.submit(cdb: CDBs.read10(lba: 0, blocks: 1), length: 512, isRead: true, tag: 1)
        for t in 2..<10 { _ = sim.submit(cdb: CDBs.read10(lba: UInt32(1000 + t), blocks: 1), length: 512, isRead: true, tag: t) }
        sim.kick()
        let done = collect(sim, count: 9)
        #expect(done.count == 9)
        #expect(done.last?.tag == 1, "the slow command completes last")
        #expect(sim.stolenSlots > 0)
        #expect(done.allSatisfy { $0.status == 0 })
    }

    @Test func restartedServerPicksUpPendingCommands() throws {
        let sim = KernelRingSimulator()
        let store = UnlockedMemoryStore(byteCount: 1 << 20)
        let executor = try makeEngineExecutor(store: store)
        // A first server completes one command, then stops ("crashes") while more arrive.
        let first = try RingServer(name: "t", ring: sim.handlerRing(), signalFD: sim.handlerFD, executor: executor)
        _ = sim.submit(cdb: CDBs.testUnitReady, length: 0, isRead: false, tag: 0)
        sim.kick()
        #expect(collect(sim, count: 1).count == 1)
        first.stop()
        for t in 1...5 {
            _ = sim.submit(cdb: CDBs.write10(lba: UInt32(t), blocks: 1), length: 512, isRead: false, tag: t) { buf, _ in
                buf.initializeMemory(as: UInt8.self, repeating: UInt8(t))
            }
        }
        // No kick: a new daemon must look at the ring on its own.
        let second = try RingServer(name: "t", ring: sim.handlerRing(), signalFD: sim.handlerFD, executor: executor)
        defer { second.stop() }
        let done = collect(sim, count: 5)
        #expect(done.count == 5 && done.allSatisfy { $0.status == 0 })
        for t in 1...5 { #expect(store.bytes[t * 512] == UInt8(t)) }
    }

    @Test func taskManagementAbortsCommandsNotStartedYet() throws {
        let sim = KernelRingSimulator()
        let store = UnlockedMemoryStore(byteCount: 1 << 20, slowBelow: 65536, slowMicroseconds: 30_000)
        let server = try RingServer(name: "t", ring: sim.handlerRing(), signalFD: sim.handlerFD,
                                    executor: makeEngineExecutor(store: store))
        defer { server.stop() }
        _ = sim.submit(cdb: CDBs.testUnitReady, length: 0, isRead: false, tag: 0)
        sim.kick()
        _ = collect(sim, count: 1)
        // Entry and TMR are both on the ring before the handler looks: the command is
        // aborted before it starts, still completed (TASK ABORTED), and never written.
        let id = sim.submit(cdb: CDBs.write10(lba: 2000, blocks: 1), length: 512, isRead: false, tag: 1) { b, _ in
            b.initializeMemory(as: UInt8.self, repeating: 0xEE)
        }!
        #expect(sim.submitTaskManagement(.abortTask, ids: [id]))
        sim.kick()
        let done = collect(sim, count: 1)
        #expect(done.first?.status == 0x40)
        #expect(store.bytes[2000 * 512] == 0)
        #expect(server.statistics.taskManagementEntries == 1)
        #expect(server.statistics.abortedBeforeStart == 1)
    }

    final class SimulatedControl: RingControl, @unchecked Sendable {
        let sim: KernelRingSimulator
        let log = Mutex<[String]>([])
        init(_ sim: KernelRingSimulator) { self.sim = sim }
        func setBlocked(_ blocked: Bool) throws {
            sim.blocked = blocked
            log.withLock { $0.append("block_dev=\(blocked ? 1 : 0)") }
        }
        /// Tags of the commands the reset answered BUSY.
        let answeredBusy = Mutex<[Int]>([])
        func resetRing() throws {
            let tags = sim.resetRing()
            answeredBusy.withLock { $0 += tags }
            log.withLock { $0.append("reset_ring=1") }
        }
    }

    /// What `kill -9` of a handler using CAP_OOOC leaves: command B (second slot) answered
    /// in A's slot and the tail published, A still running. B's entry is still on the ring;
    /// running it again would answer its id twice (the kernel's "cmd_id not found, ring is
    /// broken", seen on the real kernel). The takeover has the kernel answer A BUSY instead.
    @Test func takeoverAfterOutOfOrderAnswersLeavesNoCommandAnsweredTwice() throws {
        let sim = KernelRingSimulator()
        let store = UnlockedMemoryStore(byteCount: 1 << 20)
        _ = sim.submit(cdb: CDBs.read10(lba: 0, blocks: 1), length: 512, isRead: true, tag: 1)
        let b = sim.submit(cdb: CDBs.write10(lba: 1, blocks: 1), length: 512, isRead: false, tag: 2) { buf, _ in
            buf.initializeMemory(as: UInt8.self, repeating: 0xB0)
        }
        let ring = try sim.handlerRing()
        let slotA = ring.tail
        let entry = ring.entryOffset(slotA)
        ctcmu_ent_set_cmd_id(ring.base, entry, try #require(b))
        ctcmu_rsp_write(ring.base, entry, 0, 0, nil, 0)
        ring.publishTail((slotA + ring.lenOp(at: slotA) & ~TCMUProtocol.opMask) % ring.ringSize)
        var answered: [Int] = []
        sim.retire { answered.append($0.tag) }
        #expect(answered == [2])

        let control = SimulatedControl(sim)
        #expect(RingTakeover.prepare(ring: ring, signalFD: sim.handlerFD, control: control,
                                     name: "t", logger: .init(label: "t")) == .reset)
        #expect(control.log.withLock { $0 } == ["block_dev=1", "reset_ring=1", "block_dev=0"])
        #expect(control.answeredBusy.withLock { $0 } == [1])
        let server = try RingServer(name: "t", ring: ring, signalFD: sim.handlerFD,
                                    executor: makeEngineExecutor(store: store))
        defer { server.stop() }
        _ = sim.submit(cdb: CDBs.testUnitReady, length: 0, isRead: false, tag: 3)
        sim.kick()
        #expect(collect(sim, count: 1).map(\.tag) == [3]) // the power-on unit attention
        _ = sim.submit(cdb: CDBs.read10(lba: 1, blocks: 1), length: 512, isRead: true, tag: 4)
        sim.kick()
        let read = collect(sim, count: 1)
        #expect(!sim.broken)
        #expect(read.map(\.tag) == [4] && read.first?.status == 0)
        #expect(read.first.map(bytes) == [UInt8](repeating: 0, count: 512), "B was not run again")
    }

    /// A polling reader sees commands the kernel queued without waking it; once a poll has
    /// run out, it sleeps again until a kick (and a short sleep turns polling back on).
    @Test func pollingServesCommandsWithoutAKickAndPausesWhenIdle() throws {
        let sim = KernelRingSimulator()
        let store = UnlockedMemoryStore(byteCount: 1 << 20)
        let server = try RingServer(name: "t", ring: sim.handlerRing(), signalFD: sim.handlerFD,
                                    pollMicroseconds: 300_000, executor: makeEngineExecutor(store: store))
        defer { server.stop() }
        _ = sim.submit(cdb: CDBs.testUnitReady, length: 0, isRead: false, tag: 0)
        #expect(collect(sim, count: 1).map(\.tag) == [0], "polling from the start, no kick needed")
        _ = sim.submit(cdb: CDBs.testUnitReady, length: 0, isRead: false, tag: 1)
        #expect(collect(sim, count: 1).map(\.tag) == [1], "still polling: the previous command was recent")
        usleep(500_000) // the poll runs out: the reader sleeps
        _ = sim.submit(cdb: CDBs.testUnitReady, length: 0, isRead: false, tag: 2)
        usleep(100_000)
        var early: [Int] = []
        sim.retire { early.append($0.tag) }
        #expect(early.isEmpty, "not polling after an idle gap longer than the poll")
        sim.kick()
        #expect(collect(sim, count: 1).map(\.tag) == [2])
    }

    @Test func takeoverOfAnEmptyRingChangesNothing() throws {
        let sim = KernelRingSimulator()
        let control = SimulatedControl(sim)
        #expect(RingTakeover.prepare(ring: try sim.handlerRing(), signalFD: sim.handlerFD, control: control,
                                     name: "t", logger: .init(label: "t")) == .clean)
        #expect(control.log.withLock { $0 }.isEmpty)
    }

    @Test func quiesceWaitsForRunningCommandsAndHoldsNewOnes() throws {
        let sim = KernelRingSimulator()
        let store = UnlockedMemoryStore(byteCount: 1 << 20, slowBelow: 65536, slowMicroseconds: 100_000)
        let server = try RingServer(name: "t", ring: sim.handlerRing(), signalFD: sim.handlerFD,
                                    executor: makeEngineExecutor(store: store))
        defer { server.stop() }
        _ = sim.submit(cdb: CDBs.testUnitReady, length: 0, isRead: false, tag: 0)
        sim.kick()
        _ = collect(sim, count: 1)
        _ = sim.submit(cdb: CDBs.read10(lba: 0, blocks: 1), length: 512, isRead: true, tag: 1)
        sim.kick()
        usleep(20_000)
        var seenInside = -1
        server.quiesce {
            // The slow command has finished; one queued now waits on the ring.
            var done: [Int] = []
            sim.retire { done.append($0.tag) }
            seenInside = done.count
            _ = sim.submit(cdb: CDBs.read10(lba: 200, blocks: 1), length: 512, isRead: true, tag: 2)
            sim.kick()
            usleep(50_000)
            sim.retire { _ in seenInside += 10 }
        }
        #expect(seenInside == 1, "inside: the running command had completed, the new one had not run")
        #expect(collect(sim, count: 1).map(\.tag) == [2], "resumed afterwards without another kick")
    }

    @Test func externalResetIsDetectedFromTheTail() throws {
        let sim = KernelRingSimulator()
        let store = UnlockedMemoryStore(byteCount: 1 << 20, slowBelow: 65536, slowMicroseconds: 100_000)
        let server = try RingServer(name: "t", ring: sim.handlerRing(), signalFD: sim.handlerFD,
                                    executor: makeEngineExecutor(store: store))
        defer { server.stop() }
        _ = sim.submit(cdb: CDBs.testUnitReady, length: 0, isRead: false, tag: 0)
        sim.kick()
        _ = collect(sim, count: 1)
        _ = sim.submit(cdb: CDBs.read10(lba: 0, blocks: 1), length: 512, isRead: true, tag: 1)
        sim.kick()
        usleep(20_000)
        // An admin writes action/reset_ring behind the handler's back.
        #expect(sim.resetRing() == [1])
        _ = sim.submit(cdb: CDBs.read10(lba: 100, blocks: 1), length: 512, isRead: true, tag: 2)
        sim.kick()
        let done = collect(sim, count: 1)
        #expect(done.map(\.tag) == [2])
        usleep(150_000) // the old command finishes meanwhile and must not be written anywhere
        sim.retire { c in Issue.record("unexpected completion \(c.tag)") }
        #expect(!sim.broken)
        #expect(server.statistics.resets == 1)
    }

    @Test func resetRingDropsInFlightCommandsAndServesAfterwards() throws {
        let sim = KernelRingSimulator()
        let store = UnlockedMemoryStore(byteCount: 1 << 20, slowBelow: 65536, slowMicroseconds: 100_000)
        let server = try RingServer(name: "t", ring: sim.handlerRing(), signalFD: sim.handlerFD,
                                    executor: makeEngineExecutor(store: store))
        defer { server.stop() }
        _ = sim.submit(cdb: CDBs.testUnitReady, length: 0, isRead: false, tag: 0)
        sim.kick()
        _ = collect(sim, count: 1)
        // A slow command is in flight when the admin resets the ring.
        _ = sim.submit(cdb: CDBs.read10(lba: 0, blocks: 1), length: 512, isRead: true, tag: 1)
        sim.kick()
        usleep(20_000)
        let control = SimulatedControl(sim)
        try server.resetRing(using: control)
        #expect(control.log.withLock { $0 } == ["block_dev=1", "reset_ring=1", "block_dev=0"])
        #expect(sim.head == 0 && sim.inFlightCount == 0)
        // The late completion of the old command must not land in the new ring.
        _ = sim.submit(cdb: CDBs.read10(lba: 100, blocks: 1), length: 512, isRead: true, tag: 2)
        sim.kick()
        let done = collect(sim, count: 1)
        #expect(done.map(\.tag) == [2])
        #expect(!sim.broken)
        #expect(server.statistics.resets >= 1)
    }
}
