//! [`Verdict`]: one finding about one layer, parameter or the loss, with the figure
//! that triggered it and the usual remedy.

use std::fmt;

/// What is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Finding {
    /// Most of a layer's outputs are (near) zero: dead ReLU units.
    DeadUnits,
    /// At initialisation the std shrinks with depth: the signal fades.
    CollapsingWithDepth,
    /// At initialisation the std grows with depth.
    ExplodingWithDepth,
    /// During training a layer's std fell far below its peak or its start.
    CollapsingOverTime,
    /// During training a layer's std rose far above its start.
    ExplodingOverTime,
    /// Many tanh-like units sit at ±1, where they pass no gradient.
    Saturated,
    /// The first loss is far from `ln(classes)`.
    InitialLoss,
    /// Update:data ratio far below 1e-3: the parameter barely learns.
    SlowUpdates,
    /// Update:data ratio far above 1e-3: steps too big for the parameter.
    FastUpdates,
    /// NaN or infinity in activations, gradients or the loss.
    NonFinite,
}

impl Finding {
    /// A short title, e.g. `"dead units"`.
    pub fn title(self) -> &'static str {
        match self {
            Finding::DeadUnits => "dead units",
            Finding::CollapsingWithDepth => "activations collapse with depth",
            Finding::ExplodingWithDepth => "activations explode with depth",
            Finding::CollapsingOverTime => "activations collapse during training",
            Finding::ExplodingOverTime => "activations explode during training",
            Finding::Saturated => "saturated units",
            Finding::InitialLoss => "initial loss far from ln(classes)",
            Finding::SlowUpdates => "update:data ratio too low",
            Finding::FastUpdates => "update:data ratio too high",
            Finding::NonFinite => "NaN/infinite values",
        }
    }

    /// The usual remedy, as a practitioner would suggest it.
    pub fn remedy(self) -> &'static str {
        match self {
            Finding::DeadUnits => {
                "lower the learning rate; use Kaiming init and normalised inputs; a \
                 GeneralRelu (leak, shifted mean) or BatchNorm keeps units alive"
            }
            Finding::CollapsingWithDepth => {
                "initialise for the nonlinearity: Kaiming (ReLU) or Xavier with the tanh gain \
                 5/3, or LSUV; normalise the inputs; BatchNorm makes depth harmless"
            }
            Finding::ExplodingWithDepth => {
                "the weights are too large for their fan-in: scale them by gain/sqrt(fan_in) \
                 (Kaiming, LSUV) or add BatchNorm"
            }
            Finding::CollapsingOverTime => {
                "the run blew up and its units died: lower the learning rate (or warm it up \
                 with one-cycle), fix the init (Kaiming, LSUV) or add BatchNorm"
            }
            Finding::ExplodingOverTime => {
                "lower the learning rate or warm it up (one-cycle); BatchNorm keeps \
                 activations in range"
            }
            Finding::Saturated => {
                "shrink the pre-activations: scale the weights by gain/sqrt(fan_in) (tanh gain \
                 5/3), normalise the inputs, or add BatchNorm before the tanh"
            }
            Finding::InitialLoss => {
                "make the initial predictions uniform: scale the output layer's weights down \
                 (e.g. x0.01) and zero its bias; a very low first loss suggests a label leak"
            }
            Finding::SlowUpdates => {
                "raise the learning rate (or this group's), or check that the parameter \
                 receives a gradient at all"
            }
            Finding::FastUpdates => "lower the learning rate (or this group's); add BatchNorm",
            Finding::NonFinite => {
                "lower the learning rate, normalise the inputs, clip gradients, and look for \
                 a log or a division of zero"
            }
        }
    }
}

/// How bad a verdict is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Training is impaired: fix before trusting the run.
    Warning,
    /// Training is broken (NaN/inf).
    Critical,
}

impl Severity {
    /// `"warning"` or `"critical"`.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One finding about one subject.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// What is wrong.
    pub finding: Finding,
    /// How bad.
    pub severity: Severity,
    /// The layer (`path (Kind)`), parameter (`name [shape]`) or `"loss"` concerned.
    pub subject: String,
    /// The figure that triggered it, in words with its value and threshold, e.g.
    /// `97.2% of outputs near zero over the last 25% of training (threshold 90%)`.
    pub evidence: String,
    /// The number compared with the threshold.
    pub value: f64,
    /// The threshold it crossed.
    pub threshold: f64,
}

impl Verdict {
    /// The usual remedy for this finding.
    pub fn remedy(&self) -> &'static str {
        self.finding.remedy()
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}: {}. Remedy: {}.",
            self.severity.name(),
            self.subject,
            self.finding.title(),
            self.evidence,
            self.remedy()
        )
    }
}
