import ArgumentParser
import TargetConfig

@main
struct SwiftTargetd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swift-targetd",
        abstract: "SwiftTarget: export files, sparse images and block devices as iSCSI logical units.",
        version: ProductVersion.current,
        subcommands: [ServeCommand.self, RunCommand.self, ImportIETDCommand.self, WebPasswordCommand.self],
        defaultSubcommand: ServeCommand.self
    )
}
