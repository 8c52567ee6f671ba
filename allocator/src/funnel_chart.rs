//! The instructor's funnel as an SVG drawn on the server: one horizontal bar per step, its
//! length the share of participants at that step now. No script or library is needed to
//! show it; the live view replaces it with a newly drawn one.

use std::fmt::Write;

use lablink_schema::wire::{FunnelCount, JourneyStep};

const WIDTH: u32 = 560;
const LABEL_WIDTH: u32 = 220;
const BAR_HEIGHT: u32 = 22;
const GAP: u32 = 8;

/// The chart for `funnel`. Every text in it is a fixed step label or a number, and is
/// escaped all the same.
pub fn svg(funnel: &[FunnelCount]) -> String {
    let most = funnel.iter().map(|f| f.count).max().unwrap_or(0).max(1);
    let rows = u32::try_from(funnel.len()).unwrap_or(0);
    let height = rows * (BAR_HEIGHT + GAP) + GAP;
    let bar_room = WIDTH - LABEL_WIDTH - 50;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg class=\"funnel\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" \
         width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" \
         aria-label=\"Participants at each step\">"
    );
    for (i, step) in funnel.iter().enumerate() {
        let y = GAP + u32::try_from(i).unwrap_or(0) * (BAR_HEIGHT + GAP);
        let length = (u64::from(step.count) * u64::from(bar_room) / u64::from(most)) as u32;
        let class = match step.step {
            JourneyStep::Failed => "bar bar-failed",
            JourneyStep::Ended => "bar bar-ended",
            _ => "bar",
        };
        let text_y = y + BAR_HEIGHT / 2 + 5;
        let _ = write!(
            out,
            "<g data-step=\"{step_name}\"><title>{label}: {count}</title>\
             <text x=\"0\" y=\"{text_y}\">{label}</text>\
             <rect class=\"{class}\" x=\"{LABEL_WIDTH}\" y=\"{y}\" width=\"{length}\" \
             height=\"{BAR_HEIGHT}\" rx=\"3\"/>\
             <text class=\"count\" x=\"{count_x}\" y=\"{text_y}\">{count}</text></g>",
            step_name = step.step.as_str(),
            label = escape(&step.label),
            count = step.count,
            count_x = LABEL_WIDTH + length + 6,
        );
    }
    out.push_str("</svg>");
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_is_a_bar_as_long_as_its_share_and_labels_are_escaped() {
        let funnel = [
            FunnelCount {
                step: JourneyStep::Assigned,
                label: "VM <assigned>".to_owned(),
                count: 4,
            },
            FunnelCount {
                step: JourneyStep::Ready,
                label: "Ready".to_owned(),
                count: 2,
            },
            FunnelCount {
                step: JourneyStep::Failed,
                label: "Failed".to_owned(),
                count: 0,
            },
        ];
        let chart = svg(&funnel);
        assert!(chart.starts_with("<svg") && chart.ends_with("</svg>"));
        assert!(chart.contains("VM &lt;assigned&gt;") && !chart.contains("<assigned>"));
        let full = WIDTH - LABEL_WIDTH - 50;
        assert!(chart.contains(&format!("width=\"{full}\"")), "{chart}");
        assert!(
            chart.contains(&format!("width=\"{}\"", full / 2)),
            "{chart}"
        );
        assert!(chart.contains("class=\"bar bar-failed\" x=\"220\" y=\"68\" width=\"0\""));
    }
}
