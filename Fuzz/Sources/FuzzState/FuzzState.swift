import ChpkiCore
import FuzzDriver

/// `FuzzEntry.state` swallows refusals, so only a trap, a crash or an ASan report stops the fuzzer.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ bytes: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzEntry.state(FuzzDriver.data(bytes, size))
    return 0
}

@main
enum FuzzState {
    static func main() { FuzzDriver.run(testOneInput) }
}
