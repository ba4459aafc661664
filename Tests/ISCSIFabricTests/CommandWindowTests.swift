import Testing
@testable import ISCSIFabric

@Suite struct CommandWindowTests {
    @Test func inOrderCommandsAdvanceExpCmdSN() {
        var window = CommandWindow<Int>(expCmdSN: 10, depth: 4)
        #expect(window.maxCmdSN == 13)
        #expect(window.receive(cmdSN: 10, immediate: false, item: 0) == .deliver)
        #expect(window.expCmdSN == 11)
        #expect(window.maxCmdSN == 14)
    }

    @Test func immediateCommandsDoNotAdvance() {
        var window = CommandWindow<Int>(expCmdSN: 5, depth: 4)
        #expect(window.receive(cmdSN: 5, immediate: true, item: 0) == .deliver)
        #expect(window.expCmdSN == 5)
    }

    @Test func gapIsHeldThenReleasedInOrder() {
        var window = CommandWindow<String>(expCmdSN: 1, depth: 8)
        #expect(window.receive(cmdSN: 3, immediate: false, item: "c") == .held)
        #expect(window.receive(cmdSN: 2, immediate: false, item: "b") == .held)
        #expect(window.nextHeld() == nil)
        #expect(window.receive(cmdSN: 1, immediate: false, item: "a") == .deliver)
        #expect(window.nextHeld() == "b")
        #expect(window.nextHeld() == "c")
        #expect(window.nextHeld() == nil)
        #expect(window.expCmdSN == 4)
    }

    @Test func duplicatesAndOutOfWindowAreIgnored() {
        var window = CommandWindow<Int>(expCmdSN: 100, depth: 4)
        #expect(window.receive(cmdSN: 99, immediate: false, item: 0) == .ignored)   // old
        #expect(window.receive(cmdSN: 104, immediate: false, item: 0) == .ignored)  // beyond MaxCmdSN 103
        #expect(window.receive(cmdSN: 102, immediate: false, item: 0) == .held)
        #expect(window.receive(cmdSN: 102, immediate: false, item: 1) == .ignored)  // duplicate
    }

    @Test func inFlightCommandsCloseTheWindow() {
        var window = CommandWindow<Int>(expCmdSN: 0, depth: 2)
        _ = window.receive(cmdSN: 0, immediate: false, item: 0)
        window.commandStarted()
        _ = window.receive(cmdSN: 1, immediate: false, item: 0)
        window.commandStarted()
        // Two in flight with depth 2: MaxCmdSN = ExpCmdSN - 1 means closed (§4.2.2.1).
        #expect(window.maxCmdSN == window.expCmdSN &- 1)
        window.commandFinished()
        #expect(window.maxCmdSN == window.expCmdSN)
    }

    @Test func serialArithmeticWrapsAround() {
        var window = CommandWindow<Int>(expCmdSN: 0xFFFF_FFFF, depth: 4)
        #expect(window.receive(cmdSN: 0xFFFF_FFFF, immediate: false, item: 0) == .deliver)
        #expect(window.expCmdSN == 0)
        #expect(window.receive(cmdSN: 1, immediate: false, item: 1) == .held)
        #expect(window.receive(cmdSN: 0, immediate: false, item: 0) == .deliver)
        #expect(window.nextHeld() == 1)
    }
}
