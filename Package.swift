// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Misalign",
    platforms: [.macOS(.v15)],  // v15: the Synchronization module (Mutex, Atomic)
    products: [
        .library(name: "MisalignCore", targets: ["MisalignCore"]),
        .executable(name: "misalign", targets: ["MisalignCLI"]),
        .executable(name: "misalign-bench", targets: ["MisalignBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // YAML experiment configs (`misalign run CONFIG`): node marks give every key its line.
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // OpenBLAS: cblas_sgemm and friends, plus openblas_set_num_threads / get_corename.
        .systemLibrary(
            name: "CBLAS",
            path: "Sources/CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // libcurl, with typed wrappers for its variadic setters.
        .systemLibrary(
            name: "CCurl",
            path: "Sources/CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // The system SQLite (run store and verdict cache, through MisalignIO's one wrapper): no package to compile, WAL and busy timeouts built in.
        .systemLibrary(
            name: "CSQLite",
            path: "Sources/CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // Small C kernels compiled for several x86 levels and dispatched at load time.
        .target(name: "CMisalignKernels", path: "Sources/CMisalignKernels"),
        // The library, one target per layer (Docs/Architecture.md). A target depends only on the
        // ones below it, so an upward import does not compile. `MisalignCore` re-exports them all.
        .target(name: "MisalignKernels", dependencies: ["CBLAS", "CMisalignKernels"]),
        .target(name: "MisalignIO", dependencies: ["MisalignKernels", "CSQLite"]),
        .target(name: "MisalignHTTP", dependencies: ["MisalignIO", "CCurl"]),
        .target(name: "MisalignTokenizer", dependencies: ["MisalignIO"]),
        .target(name: "MisalignModel", dependencies: ["MisalignKernels", "MisalignIO", "MisalignTokenizer", "CBLAS", "CMisalignKernels"]),
        .target(name: "MisalignGeneration", dependencies: ["MisalignModel", "MisalignHTTP", "MisalignTokenizer"]),
        .target(name: "MisalignJudge", dependencies: ["MisalignModel", "MisalignHTTP", "MisalignTokenizer"]),
        .target(name: "MisalignChangePoint", dependencies: ["MisalignIO", "MisalignKernels"]),
        .target(name: "MisalignPipeline", dependencies: [
            "MisalignGeneration", "MisalignJudge", "MisalignChangePoint", .product(name: "Yams", package: "Yams"),
        ]),
        .target(name: "MisalignReport", dependencies: ["MisalignPipeline"]),
        .target(name: "MisalignCore", dependencies: [
            "MisalignKernels", "MisalignIO", "MisalignHTTP", "MisalignTokenizer", "MisalignModel", "MisalignGeneration",
            "MisalignJudge", "MisalignChangePoint", "MisalignPipeline", "MisalignReport",
        ]),
        // Test and demo scaffolding (mock servers, the crash hook, the demo judge, simulated
        // studies): used by the tests, the CLI's demo commands, examples and benchmarks, never by the library.
        .target(name: "MisalignTesting", dependencies: ["MisalignCore"]),
        .executableTarget(
            name: "MisalignCLI",
            dependencies: ["MisalignCore", "MisalignTesting", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/MisalignCLI"
        ),
        .executableTarget(
            name: "MisalignBench",
            dependencies: ["MisalignCore", "MisalignTesting", "CBLAS", "CMisalignKernels"],
            path: "Benchmarks/MisalignBench"
        ),
        .executableTarget(
            name: "InspectWeights",
            dependencies: ["MisalignCore"],
            path: "Examples/InspectWeights"
        ),
        .executableTarget(
            name: "EmbedPipeline",
            dependencies: ["MisalignCore"],
            path: "Examples/EmbedPipeline"
        ),
        // Examples: small programs that import MisalignCore, built (and run by ExamplesTests) in CI.
        .executableTarget(name: "CustomJudge", dependencies: ["MisalignCore"], path: "Examples/CustomJudge"),
        .executableTarget(name: "CustomDetector", dependencies: ["MisalignCore", "MisalignTesting"], path: "Examples/CustomDetector"),
        // The out-of-package consumer (its own Package.swift in that folder), also built here so the tests run it.
        .executableTarget(name: "Embedding", dependencies: ["MisalignCore"], path: "Examples/Embedding/Sources/Embedding"),
        .executableTarget(name: "EvaluateCheckpoints", dependencies: ["MisalignCore"], path: "Examples/EvaluateCheckpoints"),
        .testTarget(
            name: "MisalignCoreTests",
            dependencies: ["MisalignCore", "MisalignTesting", "CMisalignKernels", "CCurl"],
            path: "Tests/MisalignCoreTests"
        ),
    ]
)
