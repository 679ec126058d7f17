// swift-tools-version:6.0
// An application outside Misalign's package that embeds the pipeline: it depends on this
// repository by path (as it would on a release by URL), imports only `MisalignCore`, and plugs
// in its own judge, onset detector and trainer beside the built-in ones. Docs/Embedding.md.
//
//   cd Examples/Embedding && swift build -c release && .build/release/Embedding CONFIG.yaml
import PackageDescription

let package = Package(
    name: "Embedding",
    platforms: [.macOS(.v15)],  // as the package it embeds (Synchronization)
    dependencies: [.package(name: "Misalign", path: "../..")],
    targets: [
        .executableTarget(name: "Embedding", dependencies: [.product(name: "MisalignCore", package: "Misalign")]),
    ]
)
