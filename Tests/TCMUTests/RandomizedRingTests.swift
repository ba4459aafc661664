import Testing
import TCMU
#if canImport(Glibc)
import Glibc
#endif

/// The randomized ring test. 20,000 commands by default (debug CI); set
/// TCMU_RANDOM_COMMANDS (scripts/tcmu-random-test.sh runs 1,000,000 in release mode).
@Suite struct RandomizedRingTests {
    static var commandCount: Int {
        getenv("TCMU_RANDOM_COMMANDS").flatMap { Int(String(cString: $0)) } ?? 20_000
    }

    @Test func randomCommandsMatchTheModelByteForByte() throws {
        let sim = KernelRingSimulator(ringBytes: 16 * 1024, dataBytes: 512 * 1024)
        // A slow region makes completions overtake each other.
        let store = UnlockedMemoryStore(byteCount: 16384 * 512, slowBelow: 64 * 512, slowMicroseconds: 200)
        // Reads outside the slow region take the reader thread's non-blocking path; the
        // others (and every write) go to workers: both paths share the ring.
        let engine = try makeEngineExecutors(store: store)
        let server = try RingServer(name: "random", ring: sim.handlerRing(), signalFD: sim.handlerFD,
                                    executor: engine.full, fastExecutor: engine.fast)
        defer { server.stop() }
        // Consume the power-on unit attention first.
        _ = sim.submit(cdb: CDBs.testUnitReady, length: 0, isRead: false, tag: -1)
        sim.kick()
        while sim.inFlightCount > 0 { sim.waitForKick(timeoutMS: 100); sim.retire { _ in } }

        var t0 = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t0)
        let workload = RandomizedWorkload(commands: Self.commandCount, seed: 0x5EED_7C3C)
        let report = try workload.run(simulator: sim, store: store)
        var t1 = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t1)
        let seconds = Double(t1.tv_sec - t0.tv_sec) + Double(t1.tv_nsec - t0.tv_nsec) / 1e9
        print("randomized ring: \(report) in \(seconds) s")
        #expect(report.commands == Self.commandCount)
        #expect(report.wraps > 10)
        #expect(report.stolenSlots > 0, "out-of-order completion happened")
        #expect(report.abortsSent > 0)
        #expect(report.reads > 0 && report.writes > 0)
        #expect(!sim.broken)
    }
}
