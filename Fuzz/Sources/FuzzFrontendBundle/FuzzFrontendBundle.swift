import ChpkiCore
import Foundation

/// libFuzzer calls this once per input; `FuzzEntry.frontendBundle` swallows refusals, so only a crash stops it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzEntry.frontendBundle(Data(bytes: data, count: size))
    return 0
}
