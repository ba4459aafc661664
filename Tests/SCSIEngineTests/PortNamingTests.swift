import Backstores
import ISCSIFabric
import Testing
@testable import SCSIEngine

/// REGISTER with SPEC_I_PT and ALL_TG_PT (SPC-4 5.13.7, 6.16.3), and the engine's independence
/// of the transport that names the ports.
@Suite struct PortNamingTests {
    func iscsiTID(_ name: String, isid: UInt64? = nil) -> [UInt8] {
        var text = Array((isid.map { name + ",i,0x" + String($0, radix: 16) } ?? name).utf8) + [0]
        while text.count % 4 != 0 { text.append(0) }
        return [(isid == nil ? 0x00 : 0x40) | 0x05, 0] + be16(text.count) + text
    }

    func specifying(key: UInt64 = 0, sak: UInt64, flags: UInt8 = 0x08, _ tids: [[UInt8]]) -> (cdb: [UInt8], data: [UInt8]) {
        let list = tids.flatMap { $0 }
        let data = CDB.prParams(key: key, sak: sak, flags: flags) + be32(UInt64(list.count)) + list
        return (CDB.prOut(PROutAction.register, length: data.count), data)
    }

    func keys(_ h: Harness) -> [UInt64] {
        let d = h.run(CDB.prIn(PRInAction.readKeys), dataIn: 1024).data
        let n = Int(d[7]) / 8
        return (0 ..< n).map { i in d[8 + 8 * i ..< 16 + 8 * i].reduce(0) { $0 << 8 | UInt64($1) } }
    }

    @Test func specIPTRegistersTheNamedPortsWithTheIssuingOne() {
        let h = Harness()
        let (cdb, data) = specifying(sak: 0xA1, [iscsiTID("iqn.2026-01.test:b", isid: 0x23D0_0000_0002)])
        expectGood(h.run(cdb, dataOut: data))
        #expect(keys(h) == [0xA1, 0xA1])
        // b is registered: it may reserve with the key it never sent.
        expectGood(h.run(CDB.prOut(PROutAction.reserve, type: 1), nexus: h.b, dataOut: CDB.prParams(key: 0xA1, sak: 0)))
        // From a registered nexus: INVALID FIELD IN CDB.
        let again = specifying(key: 0xA1, sak: 0xA2, [iscsiTID("iqn.2026-01.test:c", isid: 1)])
        expectSense(h.run(again.cdb, dataOut: again.data), 5, 0x2400)
    }

    @Test func specIPTIsAllOrNothing() {
        let h = Harness()
        expectGood(h.run(CDB.prOut(PROutAction.register), nexus: h.b, dataOut: CDB.prParams(key: 0, sak: 0xB2)))
        // The second TransportID names b, already registered: nothing is registered.
        let tids = [iscsiTID("iqn.2026-01.test:c", isid: 7), iscsiTID("iqn.2026-01.test:b", isid: 0x23D0_0000_0002)]
        let (cdb, data) = specifying(sak: 0xA1, tids)
        let o = h.run(cdb, dataOut: data)
        expectSense(o, 5, 0x2600)
        #expect(o.sks == [0x80, 0, UInt8(28 + tids[0].count)])
        #expect(keys(h) == [0xB2])
        // A name without a port for an initiator that never logged in names nobody.
        let unknown = specifying(sak: 0xA1, [iscsiTID("iqn.2026-01.test:nobody")])
        expectSense(h.run(unknown.cdb, dataOut: unknown.data), 5, 0x2600)
        // The same for a TransportID of another protocol (FC, 0).
        let fc = specifying(sak: 0xA1, [[0x00, 0, 0, 0] + [UInt8](repeating: 0, count: 20)])
        expectSense(h.run(fc.cdb, dataOut: fc.data), 5, 0x2600)
        // A list length that disagrees with the parameter list length.
        var short = specifying(sak: 0xA1, [iscsiTID("iqn.2026-01.test:c", isid: 7)])
        short.data[27] += 4
        expectSense(h.run(short.cdb, dataOut: short.data), 5, 0x1A00)
        #expect(keys(h) == [0xB2])
    }

    @Test func hostileTransportIDListsLeaveNoTrace() {
        let h = Harness()
        let known = h.target.state.withLock { $0.nexuses.count }
        // More TransportIDs than can ever be registered: refused at once, nothing kept.
        let many = (0 ..< 1100).map { iscsiTID("iqn.2026-01.test:m", isid: UInt64($0)) }
        let (cdb, data) = specifying(sak: 0xA1, many)
        expectSense(h.run(cdb, dataOut: data), 5, 0x5504)
        // Valid ports followed by a bad one: refused, and the ports it named are forgotten.
        let mixed = specifying(sak: 0xA1, (0 ..< 10).map { iscsiTID("iqn.2026-01.test:n", isid: UInt64($0)) }
                                            + [iscsiTID("iqn.2026-01.test:b", isid: 0x23D0_0000_0002)] + [[0x45, 0, 0, 4, 0, 0, 0, 0]])
        expectSense(h.run(mixed.cdb, dataOut: mixed.data), 5, 0x2600)
        // A name longer than any iSCSI name.
        let long = specifying(sak: 0xA1, [iscsiTID("iqn.2026-01.test:" + String(repeating: "x", count: 300), isid: 1)])
        expectSense(h.run(long.cdb, dataOut: long.data), 5, 0x2600)
        #expect(h.target.state.withLock { $0.nexuses.count } == known)
        #expect(keys(h) == [])
        // SPEC_I_PT from a registered nexus, even with an empty list: INVALID FIELD IN CDB.
        expectGood(h.run(CDB.prOut(PROutAction.register), dataOut: CDB.prParams(key: 0, sak: 0xA1)))
        let empty = specifying(key: 0xA1, sak: 0xA2, [])
        expectSense(h.run(empty.cdb, dataOut: empty.data), 5, 0x2400)
    }

    @Test func allTargetPortsRegistersThePortOnEveryGateway() {
        let h = Harness()
        h.target.setPortGroups([1, 2])
        expectGood(h.run(CDB.prOut(PROutAction.register), dataOut: CDB.prParams(key: 0, sak: 0xA1, flags: 0x04)))
        #expect(keys(h) == [0xA1, 0xA1])
        // READ FULL STATUS: one descriptor per I_T nexus, relative target ports 1 and 2.
        let d = h.run(CDB.prIn(PRInAction.readFullStatus), dataIn: 1024).data
        let first = 8, tidLength = Int(d[first + 20]) << 24 | Int(d[first + 21]) << 16 | Int(d[first + 22]) << 8 | Int(d[first + 23])
        let second = first + 24 + tidLength
        #expect([d[first + 18 ... first + 19], d[second + 18 ... second + 19]].map(Array.init) == [[0, 1], [0, 2]])
        // The same initiator port through gateway 2 is registered with that key.
        let viaTwo = h.target.openNexus(ITNexus(initiatorName: "iqn.2026-01.test:a", initiatorPortID: 0x23D0_0000_0001,
                                                targetName: h.target.name, targetPortalGroupTag: 2))
        _ = h.run([0, 0, 0, 0, 0, 0], nexus: viaTwo)
        expectGood(h.run(CDB.prOut(PROutAction.reserve, type: 1), nexus: viaTwo, dataOut: CDB.prParams(key: 0xA1, sak: 0)))
        // Unregistering with ALL_TG_PT removes both.
        expectGood(h.run(CDB.prOut(PROutAction.register), dataOut: CDB.prParams(key: 0xA1, sak: 0, flags: 0x04)))
        #expect(keys(h) == [])
    }

    /// A transport the engine knows nothing of: its protocol identifier and TransportIDs appear
    /// as it makes them.
    struct TestTransport: SCSITransport {
        var protocolIdentifier: UInt8? { 0x6 }
        func targetPortName(target: String, portGroup: UInt16) -> String? { "port-\(portGroup)" }
        func transportID(of nexus: ITNexus) -> [UInt8] { [0x06, 0, 0, 0] + be64(nexus.initiatorPortID) + [UInt8](repeating: 0, count: 12) }
        func parseTransportID(_ bytes: ArraySlice<UInt8>) -> ParsedTransportID? {
            guard bytes.count >= 24, bytes.first == 0x06 else { return nil }
            let id = bytes.dropFirst(4).prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return ParsedTransportID(initiatorName: "sas-initiator", initiatorPortID: id, length: 24)
        }
    }

    @Test func theEngineUsesWhatTheTransportSays() {
        let target = SCSITarget(name: "naa.5000000000000001", transport: TestTransport())
        try! target.addLogicalUnit(0, store: MemoryStore(blocks: 64), configuration: LogicalUnitConfiguration(serialNumber: "S1", uniqueID: 1))
        let n = target.openNexus(ITNexus(initiatorName: "sas-initiator", initiatorPortID: 0x5000_0000_0000_00AA, targetName: target.name))
        func run(_ cdb: [UInt8], _ out: [UInt8] = [], dataIn: Int = 0) -> [UInt8] {
            var o = out
            var i = [UInt8](repeating: 0, count: dataIn)
            let r = o.withUnsafeMutableBytes { ob in i.withUnsafeMutableBytes { ib in cdb.withUnsafeBytes { c in
                target.execute(cdb: c, lun: 0, nexus: n, attribute: .simple, dataOut: IOVectors(ob), dataIn: IOVectors(ib)) } } }
            return Array(i.prefix(r.dataInCount))
        }
        _ = run([0, 0, 0, 0, 0, 0])
        let vpd = run(CDB.inquiry(evpd: true, page: 0x83), dataIn: 255)
        #expect(vpd.contains(subsequence: [0x61, 0x94, 0, 4, 0, 0, 0, 1]))   // protocol 6, PIV, relative port 1
        #expect(vpd.contains(subsequence: [0x63, 0x98, 0, 8] + Array("port-1".utf8)))
        _ = run(CDB.prOut(PROutAction.register), CDB.prParams(key: 0, sak: 0x77))
        let full = run(CDB.prIn(PRInAction.readFullStatus), dataIn: 1024)
        #expect(Array(full[32 ..< 44]) == [0x06, 0, 0, 0] + be64(0x5000_0000_0000_00AA))
    }

    @Test func anUnnamedTransportOffersNoPortNames() {
        let target = SCSITarget(name: "tcmu:1/d")
        try! target.addLogicalUnit(0, store: MemoryStore(blocks: 64), configuration: LogicalUnitConfiguration(serialNumber: "S1", uniqueID: 1))
        let n = target.openNexus(ITNexus(initiatorName: "tcmu", initiatorPortID: 0, targetName: target.name))
        func run(_ cdb: [UInt8], _ out: [UInt8] = [], dataIn: Int = 0) -> SCSICommandResult {
            var o = out
            var i = [UInt8](repeating: 0, count: dataIn)
            return o.withUnsafeMutableBytes { ob in i.withUnsafeMutableBytes { ib in cdb.withUnsafeBytes { c in
                target.execute(cdb: c, lun: 0, nexus: n, attribute: .simple, dataOut: IOVectors(ob), dataIn: IOVectors(ib)) } } }
        }
        _ = run([0, 0, 0, 0, 0, 0])
        let r = run(CDB.prOut(PROutAction.register), CDB.prParams(key: 0, sak: 1, flags: 0x04))
        #expect(r.status == .checkCondition && r.sense[12] == 0x26)
    }
}

extension Array where Element == UInt8 {
    func contains(subsequence s: [UInt8]) -> Bool {
        guard s.count <= count else { return false }
        return (0 ... count - s.count).contains { Array(self[$0 ..< $0 + s.count]) == s }
    }
}
