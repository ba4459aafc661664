import Testing
@testable import Backstores
