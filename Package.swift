// swift-tools-version:6.0
// SERCluster: speech emotion recognition trained and explained on CPU clusters with MPI.
//
// Modules follow the roles of a job: `Shared` is what every role needs (MPI, audio, features,
// the network engine, checkpoints), `Worker` is what every rank computes (training steps,
// evaluation, explanations), `Coordinator` is the `ser` command line and rank 0's orchestration.
// The native libraries enter through system-library targets kept inside Shared/Native.
import Foundation
import PackageDescription

let native: [(name: String, pkg: String?)] = [
    ("CMPI", "ompi-c"),
    ("CBLAS", "openblas"),
    ("CFFTW", "fftw3f"),
    ("CSndFile", "sndfile"),
    ("CZstd", "libzstd"),
    ("CSampleRate", "samplerate"),
    ("CPNG", "libpng"),
]

// Hot loops run on unsafe buffers; bounds are checked by the code that builds the views.
// Swift code is compiled for x86-64-v3 (AVX2 + FMA: every x86 server since 2013) so that its
// loops use 256-bit vectors; OpenBLAS picks its own kernel at run time (AVX-512 where present).
// SER_MARCH overrides it (e.g. SER_MARCH=native when every node matches the build machine; all
// ranks of a job must run the same build for bitwise-reproducible training).
let march = ProcessInfo.processInfo.environment["SER_MARCH"] ?? "x86-64-v3"
#if arch(x86_64)
let cpuFlags = ["-Xcc", "-march=\(march)"]
#else
let cpuFlags: [String] = []
#endif
let optimized: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"] + cpuFlags, .when(configuration: .release))]
#if arch(x86_64)
let cOptimized: [CSetting] = [.unsafeFlags(["-O3", "-march=\(march)", "-fno-math-errno"], .when(configuration: .release))]
#else
let cOptimized: [CSetting] = [.unsafeFlags(["-O3", "-fno-math-errno"], .when(configuration: .release))]
#endif

let package = Package(
    name: "SERCluster",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "ser", targets: ["Coordinator"]),
        .library(name: "Shared", targets: ["Shared"]),
        .library(name: "Worker", targets: ["Worker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: native.map { lib in
        .systemLibrary(name: lib.name, path: "Sources/Shared/Native/\(lib.name)", pkgConfig: lib.pkg)
    } + [
        // The few kernels kept in C so that they vectorise for sure (Winograd F(4×4, 3×3) transforms,
        // memory-bound direct layers) or use AMX tiles (the bf16 matrix product).
        .target(name: "CKernels", path: "Sources/Shared/Native/CKernels",
                exclude: ["winograd4.inc", "direct.inc", "batchnorm.inc", "adam.inc"], cSettings: cOptimized),
        .target(
            name: "Shared",
            dependencies: native.map { .target(name: $0.name) } + ["CKernels"],
            path: "Sources/Shared",
            exclude: ["Native"],
            swiftSettings: optimized
        ),
        .target(
            name: "Worker",
            dependencies: ["Shared"],
            path: "Sources/Worker",
            swiftSettings: optimized
        ),
        .executableTarget(
            name: "Coordinator",
            dependencies: ["Shared", "Worker",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/Coordinator",
            swiftSettings: optimized
        ),
        // Locating ../shared and the `ser` binary, running it under mpirun: used by every test target.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "SharedTests", dependencies: ["Shared", "TestSupport"], path: "Tests/SharedTests"),
        .testTarget(name: "WorkerTests", dependencies: ["Shared", "Worker", "TestSupport"], path: "Tests/WorkerTests"),
        // Runs the `ser` executable as users do (locally and under mpirun); depends on it so it is built.
        .testTarget(name: "CoordinatorTests", dependencies: ["Shared", "Coordinator", "TestSupport"],
                    path: "Tests/CoordinatorTests"),
    ],
    swiftLanguageModes: [.v5]
)
