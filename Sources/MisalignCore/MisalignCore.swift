// MisalignCore: the one module users import. Each layer is its own target (Docs/Architecture.md);
// this module re-exports them, so `import MisalignCore` gives the whole public API.
@_exported import MisalignKernels
@_exported import MisalignIO
@_exported import MisalignHTTP
@_exported import MisalignTokenizer
@_exported import MisalignModel
@_exported import MisalignGeneration
@_exported import MisalignJudge
@_exported import MisalignChangePoint
@_exported import MisalignPipeline
@_exported import MisalignReport
