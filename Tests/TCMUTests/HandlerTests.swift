import CTCMU
import Backstores
import Testing
@testable import TCMU
#if canImport(Glibc)
import Glibc
#endif

@Suite struct UIODeviceNameTests {
    @Test func parsesNameWithSlashesInTheCfgstring() {
        let n = UIODeviceName(parsing: "tcm-user/3/disk0/swifttarget/file:/srv/images/a.img\n")
        #expect(n == UIODeviceName(hbaID: "3", device: "disk0", subtype: "swifttarget", cfgstring: "file:/srv/images/a.img"))
        #expect(n?.configfsPath() == "/sys/kernel/config/target/core/user_3/disk0")
    }

    @Test func toleratesMissingConfigAndRejectsOtherUIO() {
        #expect(UIODeviceName(parsing: "tcm-user/1/test/")?.subtype == "")
        #expect(UIODeviceName(parsing: "tcm-user/1/test")?.cfgstring == "")
        #expect(UIODeviceName(parsing: "uio_pci_generic") == nil)
        #expect(UIODeviceName(parsing: "tcm-user//x/y") == nil)
    }

    @Test func cfgstringUsesSemicolonsForOptions() throws {
        let spec = try TCMUConfigString.backstoreSpec("sparse:/srv/thin.img;size=10G;ro")
        #expect(spec == BackstoreSpec(kind: .sparse, path: "/srv/thin.img", size: 10 << 30, readOnly: true))
        #expect(throws: (any Error).self) { try TCMUConfigString.backstoreSpec("nfs:/x") }
        // The LU's identity rides along and is not a backstore option.
        let cfg = "sparse:/srv/thin.img;size=10G;ro;serial=5A1F03C2;naa=00000000000000ff"
        #expect(try TCMUConfigString.backstoreSpec(cfg) == spec)
        #expect(TCMUConfigString.identity(cfg) == .init(serial: "5A1F03C2", uniqueID: 0xff))
        #expect(TCMUConfigString.identity("file:/a") == .init(serial: nil, uniqueID: nil))
    }
}

/// A fake sysfs + configfs tree in a temp dir, and the simulator as the "uio device".
final class FakeKernel {
    let root: String
    let sim = KernelRingSimulator()

    init() {
        var template = Array("/tmp/tcmu-test-XXXXXX".utf8CString)
        root = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    deinit { _ = system("rm -rf '\(root)'") }

    var sysfs: String { root + "/class" }
    var core: String { root + "/core" }

    func write(_ path: String, _ text: String) {
        _ = system("mkdir -p '\((root + "/" + path).split(separator: "/").dropLast().joined(separator: "/").withSlash)'")
        let fd = open(root + "/" + path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        close(fd)
    }

    func read(_ path: String) -> String? { SysfsFiles.readTrimmed(root + "/" + path) }

    /// A TCMU device as the kernel shows it after `enable`.
    func addDevice(uio: String, hba: String = "1", device: String, config: String, size: UInt64) {
        write("class/\(uio)/name", "tcm-user/\(hba)/\(device)/\(config)\n")
        write("class/\(uio)/maps/map0/size", "0x\(String(sim.mapSize, radix: 16))\n")
        let dir = "core/user_\(hba)/\(device)"
        write("\(dir)/attrib/dev_size", "\(size)\n")
        write("\(dir)/attrib/hw_block_size", "512\n")
        write("\(dir)/attrib/emulate_write_cache", "0\n")
        write("\(dir)/action/block_dev", "0")
        write("\(dir)/action/reset_ring", "0")
    }

    func handler(resetRingOnOpen: Bool = false, handoverDirectory: String? = nil) -> TCMUHandler {
        var c = TCMUHandler.Configuration()
        c.handoverDirectory = handoverDirectory
        c.useNetlink = false
        c.sysfsUIOClass = sysfs
        c.configfsCore = core
        c.resetRingOnOpen = resetRingOnOpen
        let sim = self.sim
        let base = UInt(bitPattern: sim.handlerBase)
        let size = sim.mapSize
        let fd = sim.handlerFD
        return TCMUHandler(configuration: c, logger: .init(label: "test")) { _ in
            UIOMapping(fd: fd, base: UnsafeMutableRawPointer(bitPattern: base)!, size: size, release: {})
        }
    }

    /// Runs one command through the ring and returns its completion.
    func run(_ cdb: [UInt8], length: Int = 0, isRead: Bool = true,
             fill: ((UnsafeMutableRawBufferPointer, Int) -> Void)? = nil) -> KernelRingSimulator.Completion? {
        guard sim.submit(cdb: cdb, length: length, isRead: isRead, tag: 0, fill: fill) != nil else { return nil }
        sim.kick()
        var result: KernelRingSimulator.Completion?
        var out: [UInt8] = []
        for _ in 0..<200 where result == nil {
            sim.waitForKick(timeoutMS: 50)
            sim.retire { c in
                result = c
                var left = c.gatheredLength
                for s in c.dataSegments where left > 0 {
                    let n = min(left, s.length)
                    out += UnsafeRawBufferPointer(start: c.data.baseAddress! + s.offset, count: n)
                    left -= n
                }
            }
        }
        lastData = out
        return result
    }
    var lastData: [UInt8] = []
}

extension String {
    fileprivate var withSlash: String { hasPrefix("/") ? self : "/" + self }
}

@Suite struct HandlerTests {
    func readCapacity(_ k: FakeKernel) -> UInt64? {
        guard let c = k.run(CDBs.readCapacity10, length: 8), c.status == 0 else { return nil }
        let d = k.lastData
        return (UInt64(d[0]) << 24 | UInt64(d[1]) << 16 | UInt64(d[2]) << 8 | UInt64(d[3])) + 1
    }

    /// The daemon puts each LUN's configured serial and NAA value in the cfgstring: INQUIRY
    /// answers with them, as the embedded target would.
    @Test func identityFromTheCfgstring() throws {
        let k = FakeKernel()
        k.addDevice(uio: "uio0", device: "st-1-lun0",
                    config: "swifttarget/file:\(k.root)/id.img;serial=SER-XYZ;naa=0123456789abcdef", size: 1 << 20)
        let handler = k.handler()
        try handler.start()
        defer { handler.stop() }
        _ = k.run(CDBs.testUnitReady) // power-on unit attention
        #expect(k.run([0x12, 1, 0x80, 0, 255, 0], length: 255)?.status == 0)
        #expect(String(decoding: k.lastData.dropFirst(4), as: UTF8.self).hasPrefix("SER-XYZ"))
        #expect(k.run([0x12, 1, 0x83, 0, 255, 0], length: 255)?.status == 0)
        let vpd83 = k.lastData
        // The NAA-6 designator's vendor-specific bits come from the 64-bit value.
        #expect(vpd83.count > 8 && vpd83[8] >> 4 == 6)
        #expect(handler.devices.first?.name.cfgstring.hasPrefix("file:") == true)
    }

    @Test func addedReconfigRemovedLifecycle() throws {
        let k = FakeKernel()
        k.addDevice(uio: "uio0", device: "disk0", config: "swifttarget/file:\(k.root)/disk0.img", size: 1 << 20)
        let handler = k.handler()
        try handler.start()
        defer { handler.stop() }
        #expect(handler.devices.isEmpty == false, "the device present at start is served")
        #expect(k.read("disk0.img") != nil)

        // Data goes through the engine into the image file.
        _ = k.run(CDBs.testUnitReady) // power-on unit attention
        let w = k.run(CDBs.write10(lba: 7, blocks: 1), length: 512, isRead: false) { b, _ in
            b.initializeMemory(as: UInt8.self, repeating: 0x5A)
        }
        #expect(w?.status == 0)
        #expect(readCapacity(k) == 2048)

        // RECONFIG dev_size: acknowledged, file grown, new capacity served after the UA.
        #expect(handler.handle(NetlinkEvent(command: .reconfigDevice, minor: 0, deviceID: 1, deviceSize: 4 << 20)) == 0)
        var st = stat()
        #expect(stat(k.root + "/disk0.img", &st) == 0 && st.st_size == 4 << 20)
        let ua = k.run(CDBs.readCapacity10, length: 8)
        #expect(ua?.status == 0x02 && ua?.sense[12] == 0x2A && ua?.sense[13] == 0x09)
        #expect(readCapacity(k) == 8192)

        // RECONFIG writecache: WCE in the caching mode page follows.
        // The change is made on the handler's own nexus: the kernel's nexus is told with
        // MODE PARAMETERS CHANGED (2A/01), then sees the new page.
        #expect(handler.handle(NetlinkEvent(command: .reconfigDevice, minor: 0, deviceID: 1, writeCache: true)) == 0)
        let changed = k.run([0x5A, 0x08, 0x08, 0, 0, 0, 0, 0, 64, 0], length: 64)
        #expect(changed?.status == 0x02 && changed?.sense[12] == 0x2A && changed?.sense[13] == 0x01)
        let ms = k.run([0x5A, 0x08, 0x08, 0, 0, 0, 0, 0, 64, 0], length: 64)
        #expect(ms?.status == 0)
        #expect(k.lastData.count >= 12 && k.lastData[8] & 0x3F == 0x08 && k.lastData[10] & 0x04 != 0)

        // A bad size is refused with an errno, not applied.
        #expect(handler.handle(NetlinkEvent(command: .reconfigDevice, minor: 0, deviceID: 1, deviceSize: 1000)) == -EINVAL)
        #expect(handler.device(uio: "uio0")?.capacity == 4 << 20)

        // REMOVED closes it; a reconfig for it then fails with ENODEV.
        #expect(handler.handle(NetlinkEvent(command: .removedDevice, minor: 0, deviceID: 1)) == 0)
        #expect(handler.devices.isEmpty)
        #expect(handler.handle(NetlinkEvent(command: .reconfigDevice, minor: 0, deviceID: 1, deviceSize: 1 << 20)) == -ENODEV)

        // ADDED opens it again (the image keeps its data).
        let name = "tcm-user/1/disk0/swifttarget/file:\(k.root)/disk0.img"
        #expect(handler.handle(NetlinkEvent(command: .addedDevice, minor: 0, deviceID: 1, deviceName: name)) == 0)
        _ = k.run(CDBs.testUnitReady)
        let r = k.run(CDBs.read10(lba: 7, blocks: 1), length: 512)
        #expect(r?.status == 0 && k.lastData == [UInt8](repeating: 0x5A, count: 512))
    }

    @Test func foreignSubtypeIsRefused() throws {
        let k = FakeKernel()
        let handler = k.handler()
        try handler.start()
        defer { handler.stop() }
        let status = handler.handle(NetlinkEvent(command: .addedDevice, minor: 0, deviceID: 2,
                                                 deviceName: "tcm-user/1/x/rbd/pool/image"))
        #expect(status == -ENOENT)
        #expect(handler.devices.isEmpty)
    }

    @Test func devConfigReconfigSwitchesTheBackstore() throws {
        let k = FakeKernel()
        k.addDevice(uio: "uio0", device: "d", config: "swifttarget/sparse:\(k.root)/a.img", size: 1 << 20)
        let handler = k.handler()
        try handler.start()
        defer { handler.stop() }
        _ = k.run(CDBs.testUnitReady)
        _ = k.run(CDBs.write10(lba: 0, blocks: 1), length: 512, isRead: false) { b, _ in
            b.initializeMemory(as: UInt8.self, repeating: 0xA1)
        }
        #expect(handler.handle(NetlinkEvent(command: .reconfigDevice, minor: 0, deviceID: 1,
                                            deviceConfig: "swifttarget/sparse:\(k.root)/b.img")) == 0)
        #expect(handler.device(uio: "uio0")?.name.cfgstring == "sparse:\(k.root)/b.img")
        let r = k.run(CDBs.read10(lba: 0, blocks: 1), length: 512)
        #expect(r?.status == 0 && k.lastData == [UInt8](repeating: 0, count: 512), "b.img is a new, empty image")
    }

    /// A clean stop notes the ring's tail; the next handler then runs what the kernel queued
    /// meanwhile (no reset). Without the note (a crash) the kernel is asked to answer BUSY.
    @Test func cleanStopHandsPendingCommandsOverAndACrashResets() throws {
        let k = FakeKernel()
        k.addDevice(uio: "uio0", device: "d", config: "swifttarget/sparse:\(k.root)/a.img", size: 1 << 20)
        let notes = k.root + "/run/handover"
        let first = k.handler(handoverDirectory: notes)
        try first.start()
        _ = k.run(CDBs.testUnitReady)
        first.stop()
        let note = SysfsFiles.readTrimmed(notes + "/user_1-d.tail")
        #expect(note == String(ctcmu_mb_cmd_tail(k.sim.handlerBase)))
        // Queued while no handler runs; nobody kicks.
        _ = k.sim.submit(cdb: CDBs.write10(lba: 5, blocks: 1), length: 512, isRead: false, tag: 7) { b, _ in
            b.initializeMemory(as: UInt8.self, repeating: 0x5E)
        }
        let second = k.handler(handoverDirectory: notes)
        try second.start()
        var done: [KernelRingSimulator.Completion] = []
        for _ in 0..<100 where done.isEmpty {
            k.sim.waitForKick(timeoutMS: 50)
            k.sim.retire { done.append($0) }
        }
        // Run by the new handler: GOOD, or the new LU's power-on unit attention (06/29xx) that
        // the initiator retries after any restart.
        #expect(done.map(\.tag) == [7], "picked up")
        let status = done.first?.status
        #expect(status == 0 || (status == 0x02 && done.first.map { $0.sense[2] & 0x0F } == 6 && done.first?.sense[12] == 0x29))
        #expect(k.read("core/user_1/d/action/reset_ring") == "0", "no reset after a clean stop")
        #expect(!SysfsFiles.exists(notes + "/user_1-d.tail"), "the note is used once")
        if status != 0 {
            #expect(k.run(CDBs.write10(lba: 5, blocks: 1), length: 512, isRead: false) { b, _ in
                b.initializeMemory(as: UInt8.self, repeating: 0x5E)
            }?.status == 0)
        }
        #expect(k.run(CDBs.read10(lba: 5, blocks: 1), length: 512)?.status == 0)
        #expect(k.lastData == [UInt8](repeating: 0x5E, count: 512))
        // "Crash": the second handler's note is thrown away, a command is left on the ring.
        second.stop()
        _ = unlink(notes + "/user_1-d.tail")
        _ = k.sim.submit(cdb: CDBs.testUnitReady, length: 0, isRead: false, tag: 8)
        let third = k.handler(handoverDirectory: notes)
        try third.start()
        defer { third.stop() }
        #expect(k.read("core/user_1/d/action/reset_ring") == "1", "commands of a crashed handler: reset")
    }

    @Test func resetOnOpenWritesConfigfsActions() throws {
        let k = FakeKernel()
        k.addDevice(uio: "uio0", device: "d", config: "swifttarget/sparse:\(k.root)/a.img", size: 1 << 20)
        let handler = k.handler(resetRingOnOpen: true)
        try handler.start()
        defer { handler.stop() }
        #expect(k.read("core/user_1/d/action/reset_ring") == "1")
        #expect(k.read("core/user_1/d/action/block_dev") == "0")
    }
}
