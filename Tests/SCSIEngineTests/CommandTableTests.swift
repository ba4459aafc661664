import Testing
@testable import SCSIEngine

/// The command table is the one description of every command: dispatch and the checks follow it.
@Suite struct CommandTableTests {
    @Test func everyServiceActionOutsideTheTableIsAnInvalidFieldAtByteOne() {
        let h = Harness(blocks: 64)
        let opcodes = Set(CommandTable.commands.filter { $0.serviceAction != nil }.map(\.opcode))
        #expect(opcodes.count >= 4)
        for op in opcodes {
            let known = Set(CommandTable.commands.filter { $0.opcode == op }.compactMap(\.serviceAction))
            let unknown = (0 ... 0x1F).map(UInt8.init).first { !known.contains($0) }!
            let length = CommandTable.commands.first { $0.opcode == op }!.length
            var cdb = [UInt8](repeating: 0, count: length)
            cdb[0] = op; cdb[1] = unknown
            let o = h.run(cdb, dataIn: 512)
            expectSense(o, 5, 0x2400)
            #expect(o.sks == [0xC8 | 4, 0, 1], "opcode \(op): field pointer at CDB byte 1 bit 4")
        }
    }

    @Test func unknownOpcodeAndShortCDB() {
        let h = Harness(blocks: 64)
        expectSense(h.run([0xC7, 0, 0, 0, 0, 0]), 5, 0x2000)
        expectSense(h.run([0x28, 0, 0, 0, 0, 0]), 5, 0x2000) // READ(10) in six bytes
    }

    @Test func descriptorsAgreeWithThemselves() {
        for c in CommandTable.commands {
            #expect(c.usage.count == c.length && c.usage[0] == c.opcode && c.usage[c.length - 1] == 0, "\(c.name)")
            if c.fastPaths.contains(.pageCacheRead) { #expect(c.statisticsClass == .read && c.direction == .fromDevice, "\(c.name)") }
            if c.fastPaths.contains(.callback) { #expect(c.statisticsClass != .other, "\(c.name)") }
            if c.statisticsClass == .write { #expect(c.direction == .toDevice && c.access == .write, "\(c.name)") }
            #expect(LUNStatisticsRecorder.classify(c.opcode) == (c.serviceAction == nil ? c.statisticsClass : .other))
        }
    }
}
