import Backstores
import Foundation
import Synchronization
import Testing
@testable import SCSIEngine

/// A MemoryStore whose submitted reads and writes wait until the test lets them finish, then
/// complete on another thread, as librbd's callbacks do.
final class CallbackStore: CompletingBlockStore {
    let memory: MemoryStore
    private let held = Mutex<[@Sendable () -> Void]>([])
    private let failErrno = Mutex<Int32?>(nil)

    init(blocks: Int) { memory = MemoryStore(blocks: blocks) }

    var kind: BackstoreKind { .rbd }
    var path: String { "callback" }
    var byteCount: UInt64 { memory.byteCount }
    var logicalBlockSize: Int { 512 }
    var isThinProvisioned: Bool { false }
    var supportsDiscard: Bool { false }
    var isReadOnly: Bool { false }
    var mayReadWithoutBlocking: Bool { false }
    var pending: Int { held.withLock { $0.count } }

    func failNext(errno: Int32) { failErrno.withLock { $0 = errno } }

    /// Finishes every held operation on another thread and waits until they ran.
    func release() {
        let jobs = held.withLock { h in defer { h.removeAll() }; return h }
        let group = DispatchGroup()
        for job in jobs { DispatchQueue.global().async(group: group) { job() } }
        group.wait()
    }

    func submitRead(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64,
                    completion: @escaping @Sendable (BackstoreError?) -> Void) {
        let failure = failErrno.withLock { e in defer { e = nil }; return e }
        nonisolated(unsafe) let target = buffer
        held.withLock { $0.append { [memory] in
            if let failure { return completion(BackstoreError(.read, errno: failure, path: "callback")) }
            do { try memory.read(into: target, at: offset); completion(nil) } catch let error as BackstoreError { completion(error) } catch { completion(BackstoreError(.read, errno: EIO, path: "callback")) }
        } }
    }

    func submitWrite(from buffer: UnsafeRawBufferPointer, at offset: UInt64,
                     completion: @escaping @Sendable (BackstoreError?) -> Void) {
        let failure = failErrno.withLock { e in defer { e = nil }; return e }
        nonisolated(unsafe) let source = buffer
        held.withLock { $0.append { [memory] in
            if let failure { return completion(BackstoreError(.write, errno: failure, path: "callback")) }
            do { try memory.write(from: source, at: offset, durable: true); completion(nil) } catch let error as BackstoreError { completion(error) } catch { completion(BackstoreError(.read, errno: EIO, path: "callback")) }
        } }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(BackstoreError) { try memory.read(into: buffer, at: offset) }
    func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64, durable: Bool) throws(BackstoreError) {
        try memory.write(from: buffer, at: offset, durable: durable)
    }
    func flush() throws(BackstoreError) {}
    func discard(offset: UInt64, length: UInt64) throws(BackstoreError) { try memory.discard(offset: offset, length: length) }
    func allocationState(at offset: UInt64, limit: UInt64) throws(BackstoreError) -> AllocationExtent {
        AllocationExtent(mapped: true, length: limit)
    }
    func refreshSize() throws(BackstoreError) -> UInt64 { byteCount }
    func close() {}
}

/// The callback path (SCSITarget.submit): READ and WRITE handed to a CompletingBlockStore and
/// answered from its thread; everything else, or a command that cannot go now, left to `execute`.
@Suite struct CallbackCompletionTests {
    let store = CallbackStore(blocks: 256)
    let target = SCSITarget(name: "iqn.2026-12.test:callback")
    let nexus: NexusID

    init() throws {
        try target.addLogicalUnit(0, store: store, configuration: LogicalUnitConfiguration(serialNumber: "CB1", uniqueID: 7))
        nexus = target.openNexus(ITNexus(initiatorName: "iqn.2026-12.test:i", initiatorPortID: 1, targetName: target.name))
        _ = execute(CDB.tur)  // POWER ON OCCURRED
    }

    final class Answer: Sendable {
        let result = Mutex<SCSICommandResult?>(nil)
        let calls = Atomic<Int>(0)
        var value: SCSICommandResult? { result.withLock { $0 } }
    }

    /// Submits with caller-owned buffers that outlive the call (as the fabric's do).
    func submit(_ cdb: [UInt8], dataOut: UnsafeMutableRawBufferPointer = UnsafeMutableRawBufferPointer(start: nil, count: 0),
                dataIn: UnsafeMutableRawBufferPointer = UnsafeMutableRawBufferPointer(start: nil, count: 0)) -> (Bool, Answer) {
        let answer = Answer()
        let taken = cdb.withUnsafeBytes { c in
            target.submit(cdb: c, lun: 0, nexus: nexus, attribute: .simple, dataOut: IOVectors(dataOut), dataIn: IOVectors(dataIn)) { r in
                answer.result.withLock { $0 = r }
                answer.calls.add(1, ordering: .relaxed)
            }
        }
        return (taken, answer)
    }

    func execute(_ cdb: [UInt8], dataOut: [UInt8] = [], dataIn: Int = 0) -> (SCSICommandResult, [UInt8]) {
        var out = dataOut
        var input = [UInt8](repeating: 0, count: dataIn)
        let result = cdb.withUnsafeBytes { c in
            out.withUnsafeMutableBytes { o in
                input.withUnsafeMutableBytes { i in
                    target.execute(cdb: c, lun: 0, nexus: nexus, attribute: .simple, dataOut: IOVectors(o), dataIn: IOVectors(i))
                }
            }
        }
        return (result, input)
    }

    @Test func aWriteAndAReadAreAnsweredByTheStoresCallbackByteExact() throws {
        #expect(target.completesByCallback(lun: 0, nexus: nexus))
        #expect(!target.completesByCallback(lun: 1, nexus: nexus))
        let payload = (0..<2048).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { out.deallocate() }
        out.copyBytes(from: payload)
        let (wrote, writeAnswer) = submit(CDB.write10(8, 4), dataOut: out)
        #expect(wrote)
        #expect(writeAnswer.value == nil, "answered before the store finished")
        #expect(store.memory.bytes(4096..<6144) == [UInt8](repeating: 0, count: 2048))
        store.release()
        #expect(writeAnswer.calls.load(ordering: .relaxed) == 1)
        #expect(writeAnswer.value?.status == .good && writeAnswer.value?.transferLength == 2048)
        #expect(store.memory.bytes(4096..<6144) == payload)

        let into = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { into.deallocate() }
        let (read, readAnswer) = submit(CDB.read16(8, 4), dataIn: into)
        #expect(read && readAnswer.value == nil)
        store.release()
        #expect(readAnswer.value?.status == .good && readAnswer.value?.dataInCount == 2048)
        #expect(Array(into) == payload)
        let stats = target.statistics(lun: 0)?.snapshot()
        #expect(stats?.readCommands == 1 && stats?.writeCommands == 1 && stats?.bytesRead == 2048 && stats?.bytesWritten == 2048)
    }

    @Test func errorsFoundBeforeTheStoreAreAnsweredAtOnce() throws {
        let into = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 16)
        defer { into.deallocate() }
        // Past the end: LOGICAL BLOCK ADDRESS OUT OF RANGE, nothing submitted.
        let (taken, answer) = submit(CDB.read10(256, 1), dataIn: into)
        #expect(taken && store.pending == 0)
        #expect(answer.value?.status == .checkCondition)
        #expect(answer.value?.sense[2] == 0x05 && answer.value?.sense[12] == 0x21 && answer.value?.sense[13] == 0x00)
        // A unit attention comes first, on this path too.
        try target.addLogicalUnit(3, store: MemoryStore(blocks: 8), configuration: LogicalUnitConfiguration(serialNumber: "X", uniqueID: 8))
        let (first, attention) = submit(CDB.read10(0, 1), dataIn: into)
        #expect(first && store.pending == 0)
        #expect(attention.value?.sense[2] == 0x06 && attention.value?.sense[12] == 0x3F && attention.value?.sense[13] == 0x0E)
    }

    @Test func aFailedStoreOperationGivesItsSense() {
        let into = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 16)
        defer { into.deallocate() }
        store.failNext(errno: EIO)
        let (_, failed) = submit(CDB.read10(0, 1), dataIn: into)
        store.release()
        #expect(failed.value?.sense[2] == 0x03 && failed.value?.sense[12] == 0x11 && failed.value?.sense[13] == 0x00)
        // A cluster that does not answer: NOT READY, BECOMING READY, which initiators retry.
        store.failNext(errno: ETIMEDOUT)
        let (_, timedOut) = submit(CDB.write10(0, 1), dataOut: into)
        store.release()
        #expect(timedOut.value?.sense[2] == 0x02 && timedOut.value?.sense[12] == 0x04 && timedOut.value?.sense[13] == 0x01)
    }

    @Test func otherCommandsAndScatteredBuffersAreLeftToExecute() {
        let into = UnsafeMutableRawBufferPointer.allocate(byteCount: 255, alignment: 16)
        defer { into.deallocate() }
        let (inquiry, answer) = submit(CDB.inquiry(), dataIn: into)
        #expect(!inquiry && answer.calls.load(ordering: .relaxed) == 0)
        let (sync, _) = submit([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(!sync)
        #expect(store.pending == 0)
    }

    @Test func compareAndWriteWaitsForWritesInFlightAndHoldsNewOnesBack() throws {
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 16)
        defer { out.deallocate() }
        out.copyBytes(from: [UInt8](repeating: 0xAB, count: 512))
        let (taken, inFlight) = submit(CDB.write10(0, 1), dataOut: out)
        #expect(taken && store.pending == 1)
        // COMPARE AND WRITE of block 0 expecting 0xAB (what the write in flight puts there).
        let caw: [UInt8] = [0x89, 0] + be64(0) + [0, 0, 0, 1, 0, 0]
        let data = [UInt8](repeating: 0xAB, count: 512) + [UInt8](repeating: 0xCD, count: 512)
        let done = Mutex(false)
        let cawResult = Mutex<SCSICommandResult?>(nil)
        let thread = Thread { [self] in
            cawResult.withLock { $0 = execute(caw, dataOut: data).0 }
            done.withLock { $0 = true }
        }
        thread.start()
        usleep(100_000)
        let ranEarly = done.withLock { $0 }
        #expect(!ranEarly, "COMPARE AND WRITE ran while a write was in flight")
        // Meanwhile a new write does not go by callback: it would run inside the compare.
        let (second, _) = submit(CDB.write10(1, 1), dataOut: out)
        #expect(!second)
        store.release()
        #expect(inFlight.value?.status == .good)
        for _ in 0..<100 where !done.withLock({ $0 }) { usleep(10_000) }
        let finished = done.withLock { $0 }
        let status = cawResult.withLock { $0 }?.status
        #expect(finished)
        #expect(status == .good, "the compare saw the write that was in flight")
        #expect(store.memory.bytes(0..<512) == [UInt8](repeating: 0xCD, count: 512))
        let (third, _) = submit(CDB.write10(1, 1), dataOut: out)
        #expect(third, "writes go by callback again once the compare is done")
        store.release()
    }
}
