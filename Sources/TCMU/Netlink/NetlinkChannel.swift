import CTCMU

/// The TCM-USER generic netlink socket: kernel events in, `*_DONE` replies out.
final class NetlinkChannel: @unchecked Sendable {
    private let handle: OpaquePointer

    struct Failure: Error, Sendable, CustomStringConvertible {
        var operation: String
        var code: Int32
        var description: String { "\(operation): \(String(cString: ctcmu_nl_strerror(code))) (\(code))" }
        /// libnl's NLE_OBJ_NOTFOUND: the family is unknown, target_core_user is not loaded.
        var familyMissing: Bool { code == -12 }
    }

    init() throws(Failure) {
        var h: OpaquePointer?
        let rc = ctcmu_nl_open(&h)
        guard rc == 0, let h else { throw Failure(operation: "resolve TCM-USER netlink family", code: rc) }
        handle = h
    }

    deinit { ctcmu_nl_close(handle) }

    var fd: Int32 { ctcmu_nl_fd(handle) }
    var familyVersion: Int32 { ctcmu_nl_family_version(handle) }

    /// SET_FEATURES {SUPP_KERN_CMD_REPLY=1}: the kernel waits for our `*_DONE` replies.
    func announceReplySupport() throws(Failure) {
        let rc = ctcmu_nl_set_features(handle, 1)
        if rc < 0 { throw Failure(operation: "SET_FEATURES", code: rc) }
    }

    private final class Sink {
        var events: [NetlinkEvent] = []
    }

    /// Events pending on the socket (non-blocking).
    func receive() throws(Failure) -> [NetlinkEvent] {
        let sink = Sink()
        let rc = withExtendedLifetime(sink) {
            ctcmu_nl_receive(handle, { raw, context in
                guard let raw, let context else { return }
                let sink = Unmanaged<Sink>.fromOpaque(context).takeUnretainedValue()
                if let event = NetlinkEvent(raw.pointee) { sink.events.append(event) }
            }, Unmanaged.passUnretained(sink).toOpaque())
        }
        if rc < 0 && sink.events.isEmpty { throw Failure(operation: "receive", code: rc) }
        return sink.events
    }

    func reply(_ command: TCMUProtocol.NetlinkCommand, status: Int32, deviceID: UInt32) throws(Failure) {
        let rc = ctcmu_nl_reply(handle, command.rawValue, status, deviceID)
        if rc < 0 { throw Failure(operation: "reply \(command)", code: rc) }
    }
}

extension NetlinkEvent {
    init?(_ e: ctcmu_nl_event) {
        guard let command = TCMUProtocol.NetlinkCommand(rawValue: e.cmd) else { return nil }
        func string<T>(_ tuple: T) -> String {
            withUnsafeBytes(of: tuple) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        }
        self.init(command: command,
                  minor: e.has_minor != 0 ? e.minor : nil,
                  deviceID: e.has_device_id != 0 ? e.device_id : nil,
                  deviceName: string(e.device),
                  deviceConfig: e.has_dev_cfg != 0 ? string(e.dev_cfg) : nil,
                  deviceSize: e.has_dev_size != 0 ? e.dev_size : nil,
                  writeCache: e.has_writecache != 0 ? e.writecache != 0 : nil)
    }
}
