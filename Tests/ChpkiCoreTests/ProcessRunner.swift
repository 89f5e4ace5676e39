import Foundation
import Testing

/// Runs a command found on PATH in `directory`, records a test issue unless it exits 0, and
/// returns what it printed (stdout and stderr together): the tests' way to ask tools chpki did
/// not write (tar, openssl) about chpki's output.
@discardableResult
func runTool(_ arguments: [String], in directory: URL) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    process.currentDirectoryURL = directory
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "\(arguments): \(output)")
    return output
}
