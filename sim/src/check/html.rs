//! A self-contained HTML page (inline CSS and JS, no network) drawing a failing part's
//! operations on a time axis, one row per client, the failing window marked, like Porcupine's
//! visualisation. Clicking an operation shows its details; the slider zooms the time axis.

use std::fmt::Write as _;

use super::report::{CheckReport, Mark, PartReport, TimelineOp};

const STYLE: &str = r#"
body { font: 13px system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 16px; margin: 0 0 4px; }
.meta { color: #555; margin-bottom: 10px; }
.legend span { display: inline-block; padding: 1px 6px; margin-right: 6px; border-radius: 3px; }
#chart { position: relative; overflow-x: auto; border: 1px solid #ccc; margin-top: 8px; }
#canvas { position: relative; }
.row { position: absolute; left: 0; height: 26px; border-bottom: 1px dashed #eee; width: 100%; }
.label { position: sticky; left: 0; z-index: 2; background: #fafafa; width: 70px;
         height: 26px; line-height: 26px; padding-left: 4px; border-right: 1px solid #ddd; }
.op { position: absolute; height: 18px; top: 4px; line-height: 18px; font-size: 11px;
      overflow: hidden; white-space: nowrap; border-radius: 3px; padding: 0 3px;
      box-sizing: border-box; cursor: pointer; min-width: 3px; }
.context { background: #dde3ea; border: 1px solid #aab4c0; }
.window { background: #9cc3f0; border: 1px solid #3a78c2; }
.relaxed { background: #fff0c2; border: 1px dashed #c9a227; }
.culprit { background: #f29b9b; border: 2px solid #c0392b; font-weight: bold; }
.never { border-right-style: dotted; border-right-width: 3px; }
.selected { outline: 2px solid #000; }
#details { margin-top: 10px; font-family: ui-monospace, monospace; white-space: pre-wrap; }
table { border-collapse: collapse; margin-top: 12px; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: left; font-size: 12px; }
tr.culprit td { background: #f7c6c6; }
"#;

const SCRIPT: &str = r#"
const ops = JSON.parse(document.getElementById('ops').textContent);
const clients = [...new Set(ops.map(o => o.client))].sort((a, b) => a - b);
const start = Math.min(...ops.map(o => o.call));
const end = Math.max(...ops.map(o => o.ret === null ? o.call : o.ret));
const span = Math.max(1, end - start);
const canvas = document.getElementById('canvas');
const labelWidth = 76;
function draw(pixels) {
  canvas.innerHTML = '';
  canvas.style.width = (pixels + labelWidth + 40) + 'px';
  canvas.style.height = (clients.length * 26) + 'px';
  const x = t => labelWidth + (t - start) / span * pixels;
  clients.forEach((client, row) => {
    const div = document.createElement('div');
    div.className = 'row';
    div.style.top = (row * 26) + 'px';
    const label = document.createElement('div');
    label.className = 'label';
    label.textContent = 'client ' + client;
    div.appendChild(label);
    canvas.appendChild(div);
  });
  ops.forEach(o => {
    const div = document.createElement('div');
    const ret = o.ret === null ? end + span * 0.02 : o.ret;
    div.className = 'op ' + o.mark + (o.ret === null ? ' never' : '');
    div.style.left = x(o.call) + 'px';
    div.style.width = Math.max(3, x(ret) - x(o.call)) + 'px';
    div.style.top = (clients.indexOf(o.client) * 26 + 4) + 'px';
    div.textContent = o.text;
    div.title = '#' + o.index + ' ' + o.text;
    div.onclick = () => {
      document.querySelectorAll('.selected').forEach(e => e.classList.remove('selected'));
      div.classList.add('selected');
      document.getElementById('details').textContent =
        'op #' + o.index + ' (' + o.mark + ')\nclient ' + o.client + '\ncall ' + o.call +
        ' us\nreturn ' + (o.ret === null ? 'never (unknown outcome)' : o.ret + ' us') +
        '\n' + o.text;
    };
    canvas.appendChild(div);
  });
}
const zoom = document.getElementById('zoom');
zoom.oninput = () => draw(Number(zoom.value));
draw(Number(zoom.value));
"#;

/// The page for one part.
pub fn render_html(part: &PartReport) -> String {
    let mut page = String::new();
    let window = part.window.as_ref();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>part {name}: {verdict}</title>\
         <style>{STYLE}</style></head><body>\n<h1>part {name}: {verdict}</h1>\n",
        name = escape(&part.name),
        verdict = part.verdict,
    );
    if let (Some(rule), Some(window)) = (&part.rule, window) {
        let _ = writeln!(
            page,
            "<div class=\"meta\">{ops} operations in the part, decided without a search. \
             <b>{rule}</b>. The {count} operations marked cannot be linearized together.</div>",
            ops = part.ops,
            rule = escape(rule),
            count = window.ops.len(),
        );
    } else if let Some(window) = window {
        let _ = writeln!(
            page,
            "<div class=\"meta\">{ops} operations in the part; the search linearized {prefix} of \
             them, reaching state <code>{state}</code>, after which the {count} operations of \
             the window cannot be linearized.</div>",
            ops = part.ops,
            prefix = window.prefix_ops,
            state = escape(&window.start_state),
            count = window.ops.len(),
        );
    }
    page.push_str(
        "<div class=\"legend\"><span class=\"culprit\">culprit</span><span class=\"window\">\
         window</span><span class=\"relaxed\">relaxed (outcome made unknown)</span>\
         <span class=\"context\">context</span> zoom \
         <input id=\"zoom\" type=\"range\" min=\"600\" max=\"12000\" value=\"1200\"></div>\n\
         <div id=\"chart\"><div id=\"canvas\"></div></div>\n<div id=\"details\">Click an \
         operation for its details.</div>\n",
    );
    if let Some(window) = window {
        page.push_str(&window_table(&window.ops));
    }
    let _ = write!(
        page,
        "<script type=\"application/json\" id=\"ops\">{}</script>\n<script>{SCRIPT}</script>\n\
         </body></html>\n",
        ops_json(&part.timeline),
    );
    page
}

/// The page for the first failing part of a report, if any.
pub fn render_report_html(report: &CheckReport) -> Option<String> {
    report.failing_parts().next().map(render_html)
}

fn window_table(ops: &[TimelineOp]) -> String {
    let mut table = String::from(
        "<table><tr><th>#</th><th>client</th><th>call µs</th><th>return µs</th>\
         <th>operation</th><th>mark</th></tr>\n",
    );
    for op in ops {
        let class = if op.mark == Mark::Culprit {
            " class=\"culprit\""
        } else {
            ""
        };
        let _ = writeln!(
            table,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            op.index,
            op.client,
            op.call_us,
            op.return_us
                .map_or_else(|| "never".to_string(), |at| at.to_string()),
            escape(&op.description),
            op.mark.label(),
        );
    }
    table.push_str("</table>\n");
    table
}

fn ops_json(ops: &[TimelineOp]) -> String {
    let values: Vec<serde_json::Value> = ops
        .iter()
        .map(|op| {
            serde_json::json!({
                "index": op.index,
                "client": op.client,
                "call": op.call_us,
                "ret": op.return_us,
                "text": op.description,
                "mark": match op.mark {
                    Mark::Context => "context",
                    Mark::Window => "window",
                    Mark::Relaxed => "relaxed",
                    Mark::Culprit => "culprit",
                },
            })
        })
        .collect();
    // `</` cannot end the script element early once escaped.
    serde_json::Value::Array(values)
        .to_string()
        .replace("</", "<\\/")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
