import CLibFuzzer
import Foundation

/// Starts libFuzzer from a Swift `main`. SwiftPM renames an executable's entry point and points
/// `main` at it, so libFuzzer's own `main` never runs; its driver is called instead, with the
/// command line and the target's `LLVMFuzzerTestOneInput`.
public enum FuzzDriver {
    public typealias TestOneInput = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

    public static func run(_ testOneInput: TestOneInput) -> Never {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, testOneInput))
    }

    /// The fuzzer's bytes as `Data` (libFuzzer may pass a null pointer for the empty input).
    public static func data(_ bytes: UnsafePointer<UInt8>?, _ size: Int) -> Data {
        bytes.map { Data(bytes: $0, count: size) } ?? Data()
    }
}
