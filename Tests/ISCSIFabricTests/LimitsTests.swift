import NIOCore
import Testing
@testable import ISCSIFabric

@Suite struct LoginThrottleTests {
    static func limits() -> FabricLimits {
        var limits = FabricLimits()
        limits.chapFreeFailures = 3
        limits.chapBaseDelay = .seconds(1)
        limits.chapMaxDelay = .seconds(8)
        limits.chapForgetAfter = .seconds(600)
        return limits
    }

    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    @Test func freeFailuresCostNothingThenEachTurnWaits() {
        let throttle = LoginThrottle(limits: Self.limits())
        for _ in 0..<2 { throttle.recordFailure(initiator: "iqn.x", address: "10.0.0.1", now: t0) }
        #expect(throttle.delayBeforeVerifying(initiator: "iqn.x", address: "10.0.0.1", now: t0) == .zero)
        throttle.recordFailure(initiator: "iqn.x", address: "10.0.0.1", now: t0)
        // Third failure: the next attempt waits 1 s, and parallel attempts queue behind it.
        #expect(throttle.delayBeforeVerifying(initiator: "iqn.x", address: "10.0.0.1", now: t0) == .seconds(1))
        #expect(throttle.delayBeforeVerifying(initiator: "iqn.x", address: "10.0.0.1", now: t0) == .seconds(2))
        #expect(throttle.delayBeforeVerifying(initiator: "iqn.y", address: "10.0.0.1", now: t0) == .seconds(3))
    }

    @Test func delayDoublesUpToTheCap() {
        let throttle = LoginThrottle(limits: Self.limits())
        var now = t0
        var waits: [TimeAmount] = []
        for _ in 0..<8 {
            let wait = throttle.delayBeforeVerifying(initiator: "iqn.x", address: "10.0.0.1", now: now)
            waits.append(wait)
            now = now + wait
            throttle.recordFailure(initiator: "iqn.x", address: "10.0.0.1", now: now)
        }
        #expect(waits == [.zero, .zero, .zero, .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(8)])
    }

    @Test func anotherInitiatorFromAnotherAddressIsNotDelayed() {
        let throttle = LoginThrottle(limits: Self.limits())
        for _ in 0..<10 { throttle.recordFailure(initiator: "iqn.attacker", address: "10.0.0.1", now: t0) }
        #expect(throttle.delayBeforeVerifying(initiator: "iqn.honest", address: "10.0.0.2", now: t0) == .zero)
        // The same name from elsewhere and another name from the same address both wait.
        #expect(throttle.delayBeforeVerifying(initiator: "iqn.attacker", address: "10.0.0.9", now: t0) > .zero)
        #expect(throttle.delayBeforeVerifying(initiator: "iqn.other", address: "10.0.0.1", now: t0) > .zero)
        #expect(throttle.throttledPeers(now: t0) == 2)
    }

    @Test func successClearsTheNameNotTheAddressAndQuietTimeForgets() {
        let throttle = LoginThrottle(limits: Self.limits())
        for _ in 0..<5 { throttle.recordFailure(initiator: "iqn.x", address: "10.0.0.1", now: t0) }
        throttle.recordSuccess(initiator: "iqn.x")
        #expect(throttle.delayBeforeVerifying(initiator: "iqn.x", address: "10.0.0.7", now: t0) == .zero)
        #expect(throttle.delayBeforeVerifying(initiator: "iqn.x", address: "10.0.0.1", now: t0) > .zero)
        let later = t0 + .seconds(3600)
        #expect(throttle.delayBeforeVerifying(initiator: "iqn.x", address: "10.0.0.1", now: later) == .zero)
    }

    @Test func trackedPeersAreBounded() {
        var limits = Self.limits()
        limits.chapTrackedPeers = 100
        let throttle = LoginThrottle(limits: limits)
        for i in 0..<1000 { throttle.recordFailure(initiator: "iqn.\(i)", address: "10.0.\(i / 256).\(i % 256)", now: t0) }
        #expect(throttle.throttledPeers(now: t0) <= 100)
    }
}

@Suite struct LoginAdmissionTests {
    @Test func perAddressAndTotalCaps() {
        var limits = FabricLimits()
        limits.maxLoginsPerAddress = 2
        limits.maxLoginsTotal = 3
        let admission = LoginAdmission(limits: limits)
        #expect(admission.admit("a") && admission.admit("a"))
        #expect(!admission.admit("a"))
        #expect(admission.admit("b"))
        #expect(!admission.admit("c"))
        admission.release("a")
        #expect(admission.admit("c"))
        #expect(admission.inLogin == 3)
        admission.release("zzz")  // never admitted: no effect
        #expect(admission.inLogin == 3)
    }
}

@Suite struct LogBudgetTests {
    @Test func linesPerMinuteThenASummary() {
        let t0 = NIODeadline.uptimeNanoseconds(5_000_000_000)
        let budget = LogBudget(perMinute: 2, now: t0)
        #expect(budget.decide(now: t0) == .log(suppressed: 0))
        #expect(budget.decide(now: t0) == .log(suppressed: 0))
        #expect(budget.decide(now: t0) == .suppress)
        #expect(budget.decide(now: t0 + .seconds(30)) == .suppress)
        #expect(budget.decide(now: t0 + .seconds(61)) == .log(suppressed: 2))
    }
}

@Suite struct AdditionalHeaderSegmentTests {
    static func area(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

    @Test func extendedCDBAndBidirectionalLength() throws {
        // AHSLength 17 (reserved byte + 16 CDB bytes), then type 2 with a length of 0x1000.
        let cdbTail = [UInt8](1...16)
        let bytes: [UInt8] = [0, 17, 1, 0] + cdbTail + [0, 5, 2, 0, 0, 0, 0x10, 0]
        let segments = try AdditionalHeaderSegments.parse(Self.area(bytes))
        #expect(segments == [.extendedCDB(cdbTail), .bidirectionalReadLength(0x1000)])
    }

    @Test func paddingToFourBytes() throws {
        // A 20-byte CDB: AHSLength 5 = reserved + 4 bytes, padded from 8 to 8.
        #expect(try AdditionalHeaderSegments.parse(Self.area([0, 5, 1, 0, 9, 8, 7, 6])) == [.extendedCDB([9, 8, 7, 6])])
        // A 17-byte CDB: AHSLength 2 = reserved + 1 byte, padded from 5 to 8.
        #expect(try AdditionalHeaderSegments.parse(Self.area([0, 2, 1, 0, 9, 0, 0, 0])) == [.extendedCDB([9])])
    }

    @Test(arguments: [
        ([0, 0, 1, 0], AdditionalHeaderError.badExtendedCDBLength(0)),
        ([0, 1, 1, 0], .badExtendedCDBLength(1)),
        ([0, 0x40, 1, 0], .truncated),
        ([0, 1], .truncated),
        ([0, 1, 7, 0], .unknownType(7)),
        ([0, 4, 2, 0, 0, 0, 0, 0], .badBidirectionalLength(4)),
        ([0, 2, 1, 0, 9, 0, 0, 0, 0, 2, 1, 0, 9, 0, 0, 0], .duplicate(1)),
        ([0, 0xFF, 1, 0] + [UInt8](repeating: 0, count: 256), .badExtendedCDBLength(255)),
    ] as [([UInt8], AdditionalHeaderError)])
    func malformed(_ bytes: [UInt8], _ expected: AdditionalHeaderError) {
        #expect(throws: expected) { try AdditionalHeaderSegments.parse(Self.area(bytes)) }
    }
}

@Suite struct FabricGuardsUpdateTests {
    @Test func newLimitsReachAdmissionThrottleAndLog() {
        var limits = FabricLimits()
        limits.maxLoginsPerAddress = 1
        limits.maxLoginsTotal = 1
        limits.chapFreeFailures = 0
        limits.failedLoginLogLinesPerMinute = 1
        let guards = FabricGuards(limits: limits)
        let t0 = NIODeadline.uptimeNanoseconds(9_000_000_000)
        #expect(guards.loginAdmission.admit("a"))
        #expect(!guards.loginAdmission.admit("a"))
        guards.loginThrottle.recordFailure(initiator: "iqn.x", address: "a", now: t0)
        #expect(guards.loginThrottle.delayBeforeVerifying(initiator: "iqn.x", address: "b", now: t0) == .seconds(2))
        #expect(guards.failedLoginLog.decide() == .log(suppressed: 0))
        #expect(guards.failedLoginLog.decide() == .suppress)

        limits.maxLoginsPerAddress = 2
        limits.maxLoginsTotal = 2
        limits.chapFreeFailures = 5
        limits.failedLoginLogLinesPerMinute = 3
        guards.update(limits: limits)
        #expect(guards.limits == limits)
        #expect(guards.loginAdmission.admit("a"))   // the place taken before is kept, one more now
        #expect(!guards.loginAdmission.admit("b"))
        // One failure counted so far, five free now: no wait.
        #expect(guards.loginThrottle.delayBeforeVerifying(initiator: "iqn.x", address: "a", now: t0 + .seconds(10)) == .zero)
        #expect(guards.failedLoginLog.decide() == .log(suppressed: 1))
    }
}
