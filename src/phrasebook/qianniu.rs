//! 千牛 quick-phrase sheets (快捷短语): the CSV layout shop staff export from and import into
//! the seller workbench — columns 分组 (group), 快捷编码 (quick code), 快捷短语 (the phrase).
//!
//! Reading tolerates what real sheets look like: UTF-8 with or without a BOM, GBK (Excel on
//! Chinese Windows), header aliases and extra columns, quoted fields with commas and line
//! breaks, CRLF. Pure: bytes in, rows or bytes out.

/// One data row of a sheet. `line` is the 1-based line of the row in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: usize,
    pub group: String,
    pub code: String,
    pub text: String,
}

/// Why a sheet cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SheetError {
    pub message: String,
}

const GROUP: [&str; 6] = ["分组", "分组名称", "分组名", "组名", "group", "category"];
const CODE: [&str; 7] = [
    "快捷编码",
    "编码",
    "快捷码",
    "快捷短语编码",
    "短语编码",
    "code",
    "shortcut",
];
const TEXT: [&str; 8] = [
    "快捷短语",
    "短语",
    "短语内容",
    "内容",
    "话术",
    "回复内容",
    "phrase",
    "text",
];

/// Decodes a sheet: UTF-8 (BOM optional) if valid, else GBK.
pub fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => encoding_rs::GBK
            .decode_without_bom_handling(bytes)
            .0
            .into_owned(),
    }
}

fn header_index(headers: &[String], aliases: &[&str]) -> Option<usize> {
    headers.iter().position(|h| {
        let h = h.trim().trim_matches('\u{feff}').to_lowercase();
        aliases.iter().any(|a| h == *a)
    })
}

/// Parses a sheet into rows. Blank rows are skipped; the phrase column is required, the
/// group and code columns are optional.
pub fn parse(bytes: &[u8]) -> Result<Vec<Row>, SheetError> {
    let text = decode(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let headers: Vec<String> = match records.next() {
        Some(Ok(r)) => r.iter().map(str::to_string).collect(),
        Some(Err(e)) => {
            return Err(SheetError {
                message: format!("header row: {e}"),
            });
        }
        None => {
            return Err(SheetError {
                message: "the sheet is empty".into(),
            });
        }
    };
    let text_col = header_index(&headers, &TEXT).ok_or_else(|| SheetError {
        message: format!(
            "no phrase column: expected one of {} in the header row (found: {})",
            TEXT.join("/"),
            headers.join(", ")
        ),
    })?;
    let group_col = header_index(&headers, &GROUP);
    let code_col = header_index(&headers, &CODE);
    let mut rows = Vec::new();
    for record in records {
        let record = record.map_err(|e| SheetError {
            message: format!("line {}: {e}", e.position().map_or(0, |p| p.line())),
        })?;
        // The reader's own line count lags behind on CRLF files: derive the line from the
        // record's byte offset, skipping the end of the previous line.
        let line = record.position().map_or(0, |p| {
            let bytes = text.as_bytes();
            let mut at = (p.byte() as usize).min(bytes.len());
            while at < bytes.len() && (bytes[at] == b'\r' || bytes[at] == b'\n') {
                at += 1;
            }
            1 + bytes[..at].iter().filter(|&&b| b == b'\n').count()
        });
        let field = |i: Option<usize>| {
            i.and_then(|i| record.get(i))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let row = Row {
            line,
            group: field(group_col),
            code: field(code_col),
            text: field(Some(text_col)),
        };
        if row.group.is_empty() && row.code.is_empty() && row.text.is_empty() {
            continue;
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Writes a sheet as Excel expects it: UTF-8 with a BOM, CRLF, the three standard columns.
pub fn write(rows: &[Row]) -> Vec<u8> {
    let mut out = b"\xEF\xBB\xBF".to_vec();
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let mut ok = w.write_record(["分组", "快捷编码", "快捷短语"]).is_ok();
    for r in rows {
        ok &= w.write_record([&r.group, &r.code, &r.text]).is_ok();
    }
    // Writing to a Vec cannot fail; an error here would be a bug in csv, not bad input.
    if let (true, Ok(bytes)) = (ok, w.into_inner()) {
        out.extend(bytes);
    }
    out
}

/// The default intent for a 千牛 group name, if it is one of the usual groups.
pub fn intent_for_group(group: &str) -> Option<&'static str> {
    let g = group.trim();
    const MAP: &[(&[&str], &str)] = &[
        (&["欢迎语", "欢迎", "问候", "打招呼", "开场白"], "greeting"),
        (
            &["售前", "商品咨询", "产品咨询", "咨询", "商品介绍"],
            "product_inquiry",
        ),
        (&["库存", "缺货", "款式"], "stock"),
        (&["议价", "砍价", "讲价", "还价"], "bargaining"),
        (&["优惠", "活动", "优惠活动", "促销"], "promotion"),
        (&["改价", "修改价格"], "price_change"),
        (&["催付", "付款", "支付"], "payment"),
        (&["发货", "发货时间"], "shipping"),
        (&["物流", "快递", "物流查询"], "logistics"),
        (&["修改订单", "改地址", "地址"], "order_change"),
        (
            &["售后", "退换货", "退货", "换货", "退款"],
            "return_exchange",
        ),
        (&["投诉", "质量问题", "安抚"], "complaint"),
        (&["差评", "评价", "中差评"], "bad_review"),
        (&["发票"], "invoice"),
        (&["结束语", "结束", "感谢", "致谢", "告别"], "closing"),
    ];
    MAP.iter()
        .find(|(names, _)| names.contains(&g))
        .map(|(_, id)| *id)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Triple = (String, String, String);

    fn rows(bytes: &[u8]) -> Vec<Triple> {
        parse(bytes)
            .unwrap()
            .into_iter()
            .map(|r| (r.group, r.code, r.text))
            .collect()
    }

    fn r(g: &str, c: &str, t: &str) -> Triple {
        (g.into(), c.into(), t.into())
    }

    #[test]
    fn parse_table() {
        let cases: &[(&[u8], Vec<Triple>)] = &[
            (
                "分组,快捷编码,快捷短语\n欢迎语,hy1,亲您好\n".as_bytes(),
                vec![r("欢迎语", "hy1", "亲您好")],
            ),
            (
                "\u{feff}分组,快捷编码,快捷短语\r\n物流,wl,\"查询中,请稍等\"\r\n".as_bytes(),
                vec![r("物流", "wl", "查询中,请稍等")],
            ),
            (
                "序号,分组名称,编码,短语内容,备注\n1,售后,th,\"第一行\n第二行\",x\n".as_bytes(),
                vec![r("售后", "th", "第一行\n第二行")],
            ),
            (
                "快捷短语\n只有短语\n\n,,\n".as_bytes(),
                vec![r("", "", "只有短语")],
            ),
            (
                "短语,分组\n甲,乙,多余\n".as_bytes(),
                vec![r("乙", "", "甲")],
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(&rows(bytes), want, "{}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn rows_know_their_line() {
        for src in [
            "分组,快捷短语\r\n甲,\"两\n行\"\r\n乙,丙\r\n",
            "分组,快捷短语\n甲,\"两\n行\"\n乙,丙\n",
        ] {
            let rows = parse(src.as_bytes()).unwrap();
            let lines: Vec<usize> = rows.iter().map(|r| r.line).collect();
            assert_eq!(lines, [2, 4], "{src:?}");
        }
    }

    #[test]
    fn reads_gbk() {
        let (gbk, _, bad) =
            encoding_rs::GBK.encode("分组,快捷编码,快捷短语\n结束语,js,感谢您的光临\n");
        assert!(!bad);
        assert_eq!(rows(&gbk), vec![r("结束语", "js", "感谢您的光临")]);
    }

    #[test]
    fn errors_say_what_is_missing() {
        assert!(parse(b"").unwrap_err().message.contains("empty"));
        let e = parse("名称,价格\na,b\n".as_bytes()).unwrap_err();
        assert!(
            e.message.contains("no phrase column") && e.message.contains("名称"),
            "{e}"
        );
    }

    #[test]
    fn write_then_parse_round_trips() {
        let original = vec![
            Row {
                line: 2,
                group: "欢迎语".into(),
                code: "hy1".into(),
                text: "亲,您好~".into(),
            },
            Row {
                line: 3,
                group: "售后".into(),
                code: "".into(),
                text: "第一行\n\"引号\"".into(),
            },
        ];
        let bytes = write(&original);
        assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
        let back = parse(&bytes).unwrap();
        let strip = |v: &[Row]| {
            v.iter()
                .map(|r| (r.group.clone(), r.code.clone(), r.text.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&back), strip(&original));
    }

    #[test]
    fn groups_map_to_default_intents() {
        for (g, want) in [
            ("欢迎语", Some("greeting")),
            ("售后", Some("return_exchange")),
            ("结束语", Some("closing")),
            ("议价", Some("bargaining")),
            ("催付", Some("payment")),
            ("发货", Some("shipping")),
            ("物流", Some("logistics")),
            ("差评", Some("bad_review")),
            ("售前", Some("product_inquiry")),
            ("我的分组", None),
        ] {
            assert_eq!(intent_for_group(g), want, "{g}");
        }
    }
}
