import Testing
@testable import SCSIEngine
