import Foundation
import MisalignKernels
import MisalignModel

/// Hidden-state means the in-process generator records for one sample while it decodes it,
/// when the sample's request names `GenerationRequest.hiddenStateLayers`. Nothing is run
/// again for them: the prompt's last row comes from the prompt's prefill, the response's rows
/// from the decoding steps that read the sample's tokens back, summed in f64 as they pass.
///
/// The response mean covers the tokens the model read: every generated token but the last,
/// which is never fed back (the stop token of a sample that stopped, the token past
/// `maxNewTokens` of one cut at the limit). persona_vectors' `hidden_states[l][:, prompt_len:]`
/// averages the answer's text re-tokenized; for a sample ended by its stop token those are the
/// same positions, and the tokens are the ones the model wrote rather than a re-encoding.
public struct SampleActivations: Sendable, Equatable {
    /// The prompt's last token (`HiddenStateRequest.promptLast`): `[layers.count, hidden]`.
    public let promptLast: HiddenStates
    /// The mean over the response tokens read back; `count` 0 (zeros) when the first token
    /// generated ended the sample.
    public let responseMean: HiddenStates

    public init(promptLast: HiddenStates, responseMean: HiddenStates) {
        self.promptLast = promptLast; self.responseMean = responseMean
    }

    /// The hidden-state indices both captures hold, in request order.
    public var layers: [Int] { promptLast.layers }

    public static func == (a: SampleActivations, b: SampleActivations) -> Bool {
        same(a.promptLast, b.promptLast) && same(a.responseMean, b.responseMean)
    }

    private static func same(_ a: HiddenStates, _ b: HiddenStates) -> Bool {
        guard a.layers == b.layers, a.kind == b.kind, a.count == b.count, a.firstPosition == b.firstPosition,
              a.values.shape == b.values.shape else { return false }
        return a.values.buffer.elementsEqual(b.values.buffer)
    }
}
