import ISCSIFabric
import SCSIEngine
import Testing

/// iSCSI's names for SCSI ports (SPC-4 7.6.4.6, RFC 7143 §4.2.7).
@Suite struct ISCSITransportTests {
    let transport = ISCSITransport()

    @Test func transportIDOfANexusIsItsInitiatorPortName() {
        let n = ITNexus(initiatorName: "iqn.2026-01.test:a", initiatorPortID: 0x23D0_0000_0001, targetName: "iqn.t")
        let tid = transport.transportID(of: n)
        #expect(tid[0] == 0x45)
        #expect(Int(tid[2]) << 8 | Int(tid[3]) == tid.count - 4)
        #expect(tid.count % 4 == 0)
        #expect(String(decoding: tid[4...].prefix { $0 != 0 }, as: UTF8.self) == "iqn.2026-01.test:a,i,0x23d000000001")
        #expect(transport.parseTransportID(tid[...]) == ParsedTransportID(initiatorName: "iqn.2026-01.test:a",
                                                                           initiatorPortID: 0x23D0_0000_0001, length: tid.count))
        #expect(transport.targetPortName(target: "iqn.t", portGroup: 2) == "iqn.t,t,0x0002")
    }

    @Test func parsesBothFormatsAndRefusesTheRest() {
        func tid(_ format: UInt8, _ text: String, protocol p: UInt8 = 5) -> [UInt8] {
            var b = Array(text.utf8) + [0]
            while b.count % 4 != 0 { b.append(0) }
            return [format << 6 | p, 0, 0, UInt8(b.count)] + b
        }
        #expect(transport.parseTransportID(tid(0, "iqn.2026-01.test:b")[...])?.initiatorPortID == nil)
        #expect(transport.parseTransportID(tid(1, "iqn.x:b,I,0X2a")[...])?.initiatorPortID == 0x2A)
        #expect(transport.parseTransportID(tid(1, "iqn.x:b")[...]) == nil)             // no ISID
        #expect(transport.parseTransportID(tid(1, "iqn.x:b,i,0x1000000000000")[...]) == nil)  // wider than 48 bits
        #expect(transport.parseTransportID(tid(0, "iqn.x:b", protocol: 0)[...]) == nil)  // Fibre Channel
        #expect(transport.parseTransportID(tid(2, "iqn.x:b")[...]) == nil)
        var overlong = tid(0, "iqn.x:b")
        overlong[3] = 200
        #expect(transport.parseTransportID(overlong[...]) == nil)
        // Two in a row: each reports its own length.
        let two = tid(0, "iqn.x:first") + tid(1, "iqn.x:second,i,0x1")
        let a = transport.parseTransportID(two[...])!
        #expect(transport.parseTransportID(two[a.length...])?.initiatorName == "iqn.x:second")
    }
}
