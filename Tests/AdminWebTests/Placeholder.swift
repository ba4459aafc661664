import Testing
@testable import AdminWeb
