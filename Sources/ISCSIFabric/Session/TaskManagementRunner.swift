import Dispatch
import NIOCore
import SCSIEngine

/// Runs a task management function on the engine: at once on the event loop, or, when the
/// engine may wait on storage for it (a reset of a LUN other gateways share), on another
/// thread with the response handed back on the event loop.
enum TaskManagementRunner {
    /// The response when it is ready now; nil when `later` will get it on `eventLoop`.
    static func run(
        _ request: TaskManagementRequest, on device: SCSITarget, nexus: NexusID, eventLoop: any EventLoop,
        later: @escaping @Sendable (TaskManagementResponse) -> Void
    ) -> TaskManagementResponse? {
        guard device.taskManagementMayBlock(request.function, lun: request.lun, nexus: nexus) else {
            return device.taskManagement(request.function, lun: request.lun, nexus: nexus)
        }
        DispatchQueue.global().async {
            let response = device.taskManagement(request.function, lun: request.lun, nexus: nexus)
            eventLoop.execute { later(response) }
        }
        return nil
    }
}
