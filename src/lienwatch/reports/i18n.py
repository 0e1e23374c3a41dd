"""The report's words in English and Chinese, from one catalogue.

Every string the daily report prints is a key of :data:`CATALOGUE` with its ``en`` and ``zh``
text; a missing key is an error (``KeyError``), never an untranslated line. Codes the data
carries (alert types, severities, statuses) are translated through the same catalogue.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["en", "zh"]
LANGUAGES: tuple[Lang, ...] = ("en", "zh")

CATALOGUE: dict[str, tuple[str, str]] = {
    # title and frame
    "title": ("Daily risk warning report", "风险预警报告"),
    "as_of": ("Business day", "业务日"),
    "generated": ("generated", "生成于"),
    "previous": ("compared with the report of", "对比上一期报告"),
    "no_previous": ("first report: nothing to compare with", "首期报告：无可对比的上一期"),
    "changes": ("Since the previous report", "较上一期变化"),
    "contents": ("Contents", "目录"),
    "csv_note": ("Every table is also written as CSV beside this file, and every figure as "
                 "JSON:", "每张表格均另存为同目录下的 CSV 文件，全部数字另存为 JSON："),
    "not_installed": ("not installed in this lienwatch yet", "本版本尚未安装该功能"),
    "none": ("none", "无"),
    # sections
    "s_portfolio": ("1. Portfolio", "1. 资产组合"),
    "s_delinquency": ("2. Delinquency", "2. 逾期"),
    "s_collateral": ("3. Collateral", "3. 押品"),
    "s_followup": ("4. Follow-up (回访)", "4. 回访"),
    "s_models": ("5. Models", "5. 模型"),
    "s_ledger": ("6. Ledger", "6. 账本"),
    "s_trends": ("Trends", "趋势"),
    # measures
    "loans": ("Loans", "贷款笔数"),
    "outstanding": ("Outstanding principal", "未偿本金"),
    "ead": ("Exposure at default", "风险敞口"),
    "unsecured": ("Unsecured exposure", "无担保敞口"),
    "product": ("Product", "产品"),
    "province": ("Province", "省份"),
    "grade": ("Grade", "评级"),
    "ungraded": ("not graded", "无评级"),
    "bucket": ("Bucket", "账龄"),
    "balance": ("Balance", "余额"),
    "share": ("Share", "占比"),
    "dpd30_balance": ("Balance 30+ days past due", "逾期30天以上余额"),
    "dpd30_share": ("Share 30+ days past due", "逾期30天以上占比"),
    "dpd90_share": ("Share 90+ days past due", "逾期90天以上占比"),
    "roll_rate": ("Roll rate", "迁徙率"),
    "cure_rate": ("Cure rate", "治愈率"),
    "month": ("Month", "月份"),
    "from_bucket": ("Bucket at the end of the month", "月末账龄"),
    "to_bucket": ("Bucket a month later", "次月末账龄"),
    "vintage": ("Vintage", "放款月份"),
    "months_on_book": ("Months on book", "账龄月数"),
    "disbursed": ("Disbursed", "放款金额"),
    "roll_note": ("Of a bucket's balance at the end of a month, the share in a deeper bucket "
                  "(roll) or current (cure) a month later.",
                  "月末某账龄余额中，次月末进入更差账龄（迁徙）或恢复正常（治愈）的比例。"),
    "alert_type": ("Alert type", "预警类型"),
    "severity": ("Severity", "级别"),
    "open": ("Open", "未结"),
    "new": ("New", "新增"),
    "closed": ("Closed", "关闭"),
    "resolved": ("Confirmed", "确认"),
    "false_positive": ("False positive", "误报"),
    "precision": ("Alert precision (confirmed ÷ judged)", "预警准确率（确认 ÷ 已判定）"),
    "open_alerts": ("Open alerts", "未结预警"),
    "new_alerts": ("New alerts", "新增预警"),
    "closed_alerts": ("Closed alerts", "关闭预警"),
    "offline_trackers": ("Trackers offline over 72 h", "离线超过72小时的定位器"),
    "top_vehicles": ("Largest unsecured exposure with an open alert",
                     "无担保敞口最大且有未结预警的车辆"),
    "plate": ("Plate", "车牌"),
    "loan": ("Loan", "贷款"),
    "dpd": ("DPD", "逾期天数"),
    "alerts": ("Alerts", "预警"),
    "evidence": ("Evidence", "证据"),
    "track": ("Track, last 7 days", "近7天轨迹"),
    "no_track": ("no fix in 7 days", "7天内无定位"),
    "device": ("Tracker", "定位器"),
    "protocol": ("Protocol", "协议"),
    "last_fix": ("Last fix", "最后定位"),
    "clusters": ("Clusters (financed cars gathered at one place)", "聚集（多辆车聚集于一处）"),
    "vehicles": ("Vehicles", "车辆"),
    "started": ("Started", "开始"),
    "coverage": ("Coverage", "回访覆盖率"),
    "obligations": ("Obligations", "应回访事项"),
    "breaches": ("SLA breaches", "超时"),
    "uncovered": ("Uncovered", "未覆盖"),
    "open_triggers": ("Open triggers", "未结触发"),
    "uncovered_list": ("Uncovered triggers by loan (should be empty)", "未覆盖事项（应为空）"),
    "kind": ("Kind", "类型"),
    "detail": ("Detail", "详情"),
    "deadline": ("Deadline", "截止时间"),
    "team": ("Team", "团队"),
    "agent": ("Agent", "专员"),
    "contacts": ("Contacts", "联系次数"),
    "rpc": ("Right-party contacts", "有效联系"),
    "promises": ("Promises to pay", "承诺还款"),
    "kpi_period": ("Follow-up figures over the last {days} days.", "回访指标统计近 {days} 天。"),
    "measure": ("Measure", "指标"),
    "rate": ("Rate", "比率"),
    "interval": ("95 % interval", "95% 置信区间"),
    "count": ("Count", "数量"),
    "contact_rate": ("Contact rate", "接通率"),
    "rpc_rate": ("Right-party contact rate", "有效联系率"),
    "promise_rate": ("Promise-to-pay rate", "承诺还款率"),
    "promise_kept_rate": ("Promise-kept rate", "履约率"),
    "sla_breach_rate": ("SLA breach rate", "超时率"),
    "champion_challenger": ("Champion / challenger (cure rate)", "冠军/挑战者策略（回收率）"),
    "champion_challenger_roll": ("Champion / challenger (roll rate, lower is better)",
                                 "冠军/挑战者策略（滚动率，越低越好）"),
    "challenger_setup": ("Challenger {name} ({split} of new cases): {tries}.",
                         "挑战者策略 {name}（新案件的 {split}）：{tries}。"),
    "challenger_by_score": ("agent tasks ordered by behaviour score × unsecured exposure; "
                            "{scored} of {cases} of its cases scored with the fit through "
                            "{through}",
                            "坐席任务按行为评分 × 无担保敞口排序；{cases} 个案件中 {scored} 个"
                            "用截至 {through} 的模型评分"),
    "challenger_ladders": ("its own ladders: {ladders}", "使用自己的流程：{ladders}"),
    "champion": ("champion", "冠军"),
    "challenger": ("challenger", "挑战者"),
    "difference": ("difference", "差异"),
    "significant": ("significant", "显著"),
    "not_significant": ("not significant", "不显著"),
    "repossessions": ("Repossessions and recoveries", "收车与处置"),
    "status": ("Status", "状态"),
    "proceeds": ("Sale proceeds", "拍卖所得"),
    "costs_recovered": ("Costs recovered", "回收费用"),
    "to_loan": ("Paid to loans", "冲抵贷款"),
    "deficiency": ("Deficiency", "差额"),
    "recovered": ("Paid on followed-up loans", "回访贷款回款"),
    "models_note": ("Grades against outcome, the grade mix's stability, the behaviour score "
                    "on loans whose outcome is known, abnormal payments and fraud rings.",
                    "评级与表现、评级分布稳定性、已知结果贷款上的行为评分、异常还款与欺诈团伙。"),
    "c_grades": ("Loans by origination grade (under each bar: share defaulted)",
                 "按进件评级的贷款笔数（柱下：违约占比）"),
    "defaulted": ("defaulted", "违约"),
    "defaulted_loans": ("Defaulted", "违约笔数"),
    "default_rate": ("Default rate", "违约率"),
    "no_grades": ("No loan of the book carries an origination grade.",
                  "账上没有带进件评级的贷款。"),
    "grade_psi": ("Grade mix of new loans (disbursed since {since}) against the book before "
                  "them: PSI {psi} (under 0.1 stable, over 0.25 a shift).",
                  "新增贷款（{since} 起放款）与此前账上的评级分布：PSI {psi}（低于 0.1 稳定，"
                  "高于 0.25 明显偏移）。"),
    # the scorecard's stability
    "scorecard_stability": ("Scorecard stability", "评分卡稳定性"),
    "scorecard_psi": ("Applications decided since {since} ({applications}) against the "
                      "scorecard's fit ({reference} rows): PSI of the score {psi}.",
                      "{since} 起决策的进件（{applications} 笔）与评分卡拟合样本（{reference} 行）"
                      "相比：评分 PSI {psi}。"),
    "population_through_the_door": (
        "Population: the applications this scorecard decided (through the door: approved, "
        "referred and declined alike), the standard population for score stability.",
        "观察总体：该评分卡决策的全部进件（通过、转人工和拒绝均计入），即评分稳定性的标准总体。"),
    "population_booked": (
        "Population: booked loans scored after the fact (the book was imported with its "
        "characteristics and this scorecard decided no application at the door), so PSI "
        "measures the booked mix, not the applicants.",
        "观察总体：事后评分的已放款贷款（贷款簿连同特征导入，该评分卡未在进件时决策），"
        "因此 PSI 反映的是放款结构而非申请人结构。"),
    "psi_change": ("Change since the report of {previous}: {change}.",
                   "较 {previous} 报告变化：{change}。"),
    "c_scorecard": ("PSI of the score and of each characteristic (under 0.1 stable, over 0.25 "
                    "a shift)", "评分及各特征的 PSI（低于 0.1 稳定，高于 0.25 明显偏移）"),
    "score": ("score", "评分"),
    "grade_mix_psi": ("PSI of the grade mix", "评级分布 PSI"),
    "score_psi": ("PSI of the score", "评分 PSI"),
    "applications": ("applications", "进件"),
    "new_abnormal_payments": ("new abnormal payments", "新增异常还款"),
    "behaviour_auc": ("AUC of the behaviour score", "行为评分 AUC"),
    "candidate_rings": ("candidate fraud rings", "疑似欺诈团伙"),
    "ring_borrowers": ("borrowers in them", "涉及借款人"),
    "psi_small_sample": ("Only {n} recent applications: at so few, PSI moves by chance; read "
                         "it as a hint, not a shift.",
                         "近期进件仅 {n} 笔：样本过少时 PSI 受随机波动影响大，"
                         "仅供参考，不宜判定为偏移。"),
    "psi": ("PSI", "PSI"),
    "score_band": ("Score band", "评分区间"),
    "reference_share": ("Share at the fit", "拟合样本占比"),
    "recent_share": ("Share of recent applications", "近期进件占比"),
    "characteristic": ("Characteristic", "特征"),
    "information_value": ("Information value", "信息值 (IV)"),
    "since_previous": ("Since the previous report", "较上期"),
    "psi_reading": ("PSI compares each characteristic's attributes (the scorecard's bins) "
                    "among the recent applications with the rows the scorecard was fitted on; "
                    "every attribute's counts:",
                    "PSI 比较近期进件在各特征分箱上的分布与评分卡拟合样本的分布；各分箱计数见："),
    "no_applications": ("No scored application is stored with the book: the scorecard's "
                        "stability needs the applications' characteristics (decided through "
                        "the API, or imported with the loans; docs/risk.md).",
                        "账上未保存已评分的进件：评分卡稳定性需要进件特征（通过 API 决策，"
                        "或随贷款导入；见 docs/risk.md）。"),
    "behaviour_one_class": ("The behaviour score cannot be judged yet: the months {months} "
                            "need both loans that rolled to M2+ and loans that did not.",
                            "行为评分暂无法评估：{months} 月份需要既有滚动至 M2+ 的贷款，"
                            "也有未滚动的贷款。"),
    "behaviour_few_months": ("The behaviour score cannot be judged yet: a time-based split needs "
                             "at least two observation months with a known outcome; the book "
                             "has {count} ({months}).",
                             "行为评分暂无法评估：按时间切分至少需要两个已知结果的观察月，"
                             "账上仅有 {count} 个（{months}）。"),
    "behaviour_capacity": ("The behaviour score cannot be judged: the capacity is not a share "
                           "of the loans ({months}).",
                           "行为评分无法评估：处理能力不是贷款占比（{months}）。"),
    # the incentives league and the capacity forecast (follow-up)
    "incentives": ("Rewards and penalties (奖惩) league", "奖惩积分榜"),
    "incentives_note": ("Month {month} to {to}. The scheme, and the command that traces every "
                        "point to its act:", "{month} 月截至 {to}。积分方案，及将每一分追溯至其"
                        "行为的命令："),
    "points": ("Points", "积分"),
    "c_league": ("Points per agent, {month} (the best first)", "{month} 月各专员积分（高者在前）"),
    "acts": ("Acts", "行为数"),
    "points_by_act": ("Points by act", "各行为积分"),
    "to_date": ("to date", "截至目前"),
    "last_month_league": ("Month {month}, the top five", "{month} 月前五名"),
    "capacity": ("Capacity forecast", "人力预测"),
    "capacity_note": ("The {days} business days from {start}: the work the open triggers and "
                      "those expected will bring, against the active agents, as the book stands "
                      "when the report is made. Capacity rules, strategy and command:",
                      "自 {start} 起 {days} 个工作日：未结触发及预计新增触发带来的工作量与在岗"
                      "人员对比，按生成报告时的账簿计算。人力规则、策略及命令："),
    "c_capacity": ("Agents each team needs over the next {days} days (under each bar: agents "
                   "it has; red: short)", "未来 {days} 天各团队所需人数（柱下：现有人数；"
                   "红色：不足）"),
    "c_workload": ("Forecast tasks per day by channel", "按渠道的每日预测任务量"),
    "agents": ("Agents", "人数"),
    "has_agents": ("has {n}", "现有 {n}"),
    "any_team": ("any team", "任意团队"),
    "skill": ("Skill", "技能"),
    "tasks": ("Tasks", "任务"),
    "rostered": ("Has", "现有"),
    "needed": ("Needs", "所需"),
    "shortfall": ("Short", "缺口"),
    "breaches_expected": ("Breaches expected", "预计超时"),
    "forecast_breaches": ("Expected SLA breaches with the staff as it is: {expected}; steps "
                          "forecast to breach on known loans: {listed}; calls held back by the "
                          "compliance guard's daily cap whatever the staffing: {guard}.",
                          "按现有人员预计超时 {expected} 次；已知贷款上预计超时的步骤 {listed} 个；"
                          "受合规每日上限约束、增加人手也无法提前的电话 {guard} 个。"),
    "channel": ("Channel", "渠道"),
    "due": ("Due", "到期"),
    "more_in_json": ("{n} more in", "其余 {n} 条见"),
    "behaviour_score": ("Behaviour score (roll to M2+ within 60 days)",
                        "行为评分（60 天内滚动至 M2+）"),
    "behaviour_fit": ("Fitted on {fit}, judged on {test}: {rows} loans, {rolled} rolled; "
                      "AUC {auc}, KS {ks}.",
                      "以 {fit} 拟合，于 {test} 检验：{rows} 笔，{rolled} 笔滚动；"
                      "AUC {auc}，KS {ks}。"),
    "priority_duel": ("Rolls reached working {capacity} of the loans: by exposure (champion) "
                      "{champion}, by score × exposure (challenger) {challenger}; difference "
                      "{difference} (95% CI {low} to {high}).",
                      "处理 {capacity} 贷款时覆盖的滚动贷款：按敞口（冠军）{champion}，"
                      "按评分 × 敞口（挑战者）{challenger}；差 {difference}"
                      "（95% 置信区间 {low} 至 {high}）。"),
    "band": ("Band", "分段"),
    "predicted": ("Predicted", "预测"),
    "observed": ("Observed", "实际"),
    "payment_anomalies": ("Abnormal payments: {open} alerts open, {new} new since the previous "
                          "report.", "异常还款：{open} 条预警未结，自上期新增 {new} 条。"),
    "rings_found": ("Fraud rings among the borrowers (shared phone or address, identifiers held "
                    "by more than {max_share} dropped): {rings} candidate rings, {borrowers} "
                    "borrowers, the largest {largest}.",
                    "借款人中的疑似团伙（共用电话或地址，超过 {max_share} 人共用的标识已剔除）："
                    "{rings} 个候选团伙，{borrowers} 名借款人，最大 {largest} 人。"),
    "ledger_note": ("Tree size, the latest signed head and its verification: the ledger is",
                    "树大小、最新签名树头及验证结果：防篡改账本"),
    "day": ("Day", "日期"),
    "tree_size": ("Tree size", "树大小"),
    "verification": ("Verification", "验证"),
    "verified": ("verified", "验证通过"),
    "not_verified": ("FAILED", "验证失败"),
    "entries": ("entries", "条记录"),
    "heads": ("signed heads", "个签名树头"),
    "pending": ("pending", "待封存"),
    "entries_recorded": ("entries recorded", "新增记录"),
    "heads_signed": ("heads signed", "新签名树头"),
    "latest_head": ("Latest signed head", "最新签名树头"),
    "key_id": ("key", "密钥"),
    "public_key": ("Public key (Ed25519)", "公钥（Ed25519）"),
    "no_public_key": ("the key file is not on this machine", "本机没有密钥文件"),
    "verified_note": ("Every entry matches its recorded hash and every head's root is "
                      "recomputed from the entries.",
                      "每条记录与其哈希一致，每个树头的根均可由记录重新算出。"),
    "signatures_unchecked": ("Signatures not checked: no public key.",
                             "未检查签名：没有公钥。"),
    "pts": ("pts", "个百分点"),
    # charts
    "c_buckets": ("Outstanding principal by bucket", "各账龄未偿本金"),
    "c_roll": ("Roll-rate matrix, {month} → {next} (share of balance)",
               "迁徙矩阵：{month} → {next}（余额占比）"),
    "roll_key": ("Each loan's last snapshot of the month against its last of the next month "
                 "(the latest day, for the current month): red cells rolled deeper, grey "
                 "stayed, green improved.",
                 "每笔贷款当月最后一次快照对比次月最后一次快照（当月取最新一日）：红色为恶化，"
                 "灰色为持平，绿色为好转。"),
    "c_vintage30": ("Vintage curves: balance 30+ days past due ÷ disbursed",
                    "账龄曲线：逾期30天以上余额 ÷ 放款金额"),
    "c_vintage90": ("Vintage curves: balance 90+ days past due ÷ disbursed",
                    "账龄曲线：逾期90天以上余额 ÷ 放款金额"),
    "c_province": ("Outstanding principal by province", "各省未偿本金"),
    "c_trend_balance": ("Outstanding principal, each nightly run", "未偿本金（每日批处理）"),
    "c_trend_dpd30": ("Share 30+ days past due, each nightly run",
                      "逾期30天以上占比（每日批处理）"),
    "c_alerts": ("Open alerts by type", "各类型未结预警"),
    "yuan": ("yuan", "元"),
    "wan_yuan": ("10,000 yuan", "万元"),
    "no_data": ("no data", "无数据"),
    "attribution": ("Province outlines: Natural Earth (public domain).",
                    "省界：Natural Earth（公有领域）。"),
    # codes of the data (t.code): alert types, severities, repossession states
    "code:power_cut": ("power cut", "断电"),
    "code:device_removed": ("tracker removed", "设备拆除"),
    "code:gnss_antenna_cut": ("GNSS antenna cut", "天线被剪"),
    "code:device_offline": ("tracker offline", "设备离线"),
    "code:long_stay": ("long stay", "长时间停留"),
    "code:risk_zone_visit": ("risk zone visit", "进入风险区域"),
    "code:left_region": ("left permitted region", "离开许可区域"),
    "code:night_relocation": ("night relocation", "夜间转移"),
    "code:address_mismatch": ("address mismatch", "常驻地址不符"),
    "code:unusual_area": ("unusual area", "异常区域"),
    "code:position_jump": ("position jump", "位置跳变"),
    "code:tracker_mismatch": ("trackers disagree", "双设备位置不符"),
    "code:cluster": ("cluster", "车辆聚集"),
    "code:device_cloned": ("cloned tracker", "设备克隆"),
    "code:ltv_breach": ("LTV over cap", "抵押率超限"),
    "code:info": ("info", "提示"),
    "code:warning": ("warning", "警告"),
    "code:critical": ("critical", "严重"),
    "code:ordered": ("ordered", "已下令"),
    "code:approved": ("approved", "已批准"),
    "code:recovered": ("recovered", "已收车"),
    "code:sold": ("sold", "已处置"),
    "code:settled": ("settled", "已结清"),
    "code:written_off": ("written off", "已核销"),
    "code:appraised": ("appraised", "已评估"),
    "code:surplus_due": ("surplus due", "待退余款"),
    "code:deficiency": ("deficiency", "差额待偿"),
    "code:wired": ("wired", "有线"),
    "code:wireless": ("wireless", "无线"),
    "code:unassigned": ("unassigned", "未分配"),
    "code:past_due": ("past due", "逾期"),
    "code:alert": ("alert", "预警"),
    "code:promise": ("promise to pay", "承诺还款"),
    "code:pre_due": ("installment coming due", "还款提醒"),
    "code:missed_installment": ("missed installment", "逾期未还"),
    "code:bucket_change": ("deeper bucket", "账龄迁徙"),
    "code:collateral_alert": ("collateral alert", "押品预警"),
    "code:broken_promise": ("broken promise", "承诺违约"),
    "code:payment_anomaly": ("abnormal payment", "异常还款"),
    "code:welcome_call": ("welcome call", "首期回访"),
    "code:tracker_review": ("tracker review", "设备巡检"),
    "code:inspection": ("inspection", "车辆年检"),
    "repossession_step": ("repossession: {step}", "收车：{step}"),
    # incentive acts, skills, channels
    "code:cure": ("cure", "治愈"),
    "code:kept_promise": ("kept promise", "承诺兑现"),
    "code:recovered_car": ("car recovered", "收车"),
    "code:first_contact_in_sla": ("first contact in SLA", "时限内首次联系"),
    "code:sla_breach": ("SLA breach", "超时"),
    "code:compliance_refusal": ("refused by the guard", "合规拒绝"),
    "code:broken_promise_missed": ("broken promise not followed", "违约承诺未跟进"),
    "code:complaint_upheld": ("complaint upheld", "投诉成立"),
    "code:phone": ("phone", "电话"),
    "code:field": ("field", "外访"),
    "code:sms": ("SMS", "短信"),
    "code:voice": ("automated call", "语音外呼"),
    "code:call": ("call", "人工电话"),
    "code:email": ("e-mail", "邮件"),
    "code:letter": ("letter", "信函"),
    "code:visit": ("visit", "上门"),
    "code:approve": ("approve", "审批收车"),
    "code:recover": ("recover", "收车"),
    "code:appraise": ("appraise", "评估"),
    "code:sell": ("sell", "处置"),
    "code:post": ("post proceeds", "入账"),
    "code:gps_check": ("GPS check", "定位核查"),
    "code:review": ("desk review", "案头审核"),
    "code:legal": ("legal", "法务"),
    "code:tracker_command": ("tracker command", "设备指令"),
    # the shipped scorecard's characteristics (the German credit data's columns)
    "code:status_of_existing_checking_account": ("checking account", "支票账户状态"),
    "code:duration_in_month": ("duration in months", "贷款期限（月）"),
    "code:credit_history": ("credit history", "信用记录"),
    "code:purpose": ("purpose", "贷款用途"),
    "code:credit_amount": ("credit amount", "贷款金额"),
    "code:savings_account_and_bonds": ("savings and bonds", "储蓄与债券"),
    "code:present_employment_since": ("employed since", "现职年限"),
    "code:installment_rate_in_percentage_of_disposable_income": (
        "installment as % of disposable income", "月供占可支配收入比"),
    "code:personal_status_and_sex": ("personal status and sex", "婚姻状况与性别"),
    "code:other_debtors_or_guarantors": ("other debtors or guarantors", "其他债务人或担保人"),
    "code:present_residence_since": ("at the residence since", "现住址年限"),
    "code:property": ("property", "财产"),
    "code:age_in_years": ("age", "年龄"),
    "code:other_installment_plans": ("other installment plans", "其他分期"),
    "code:housing": ("housing", "住房"),
    "code:number_of_existing_credits_at_this_bank": ("credits at this bank", "本行现有贷款数"),
    "code:job": ("job", "职业"),
    "code:number_of_people_being_liable_to_provide_maintenance_for": (
        "dependants", "需供养人数"),
    "code:telephone": ("telephone", "电话登记"),
    "code:foreign_worker": ("foreign worker", "外籍劳工"),
    # alert evidence: the rules that fire, why (the monitor's RULES), the evidence's labels
    "rule:power_cut": ("main power cut alarm", "主电源断电报警"),
    "rule:gnss_antenna_cut": ("GNSS antenna alarm", "定位天线报警"),
    "rule:device_removed.alarm": ("removal alarm", "拆除报警"),
    "rule:device_removed.silence": ("silent after a power cut", "断电后静默"),
    "rule:device_offline": ("no report", "设备无上报"),
    "rule:long_stay": ("long stay", "长时间停留"),
    "rule:risk_zone_visit": ("risk zone visit", "进入风险区域"),
    "rule:left_region": ("outside the permitted region", "驶出允许区域"),
    "rule:night_relocation": ("night parking moved", "夜间停放地变更"),
    "rule:address_mismatch": ("night parking away from home", "夜间停放地与住址不符"),
    "rule:unusual_area": ("unusual area", "异常区域活动"),
    "rule:position_jump": ("position jump", "位置跳变"),
    "rule:tracker_mismatch.apart": ("trackers apart", "双设备位置不一致"),
    "rule:tracker_mismatch.silent": ("tracker silent elsewhere", "一台设备在别处静默"),
    "rule:cluster": ("vehicles gathered", "车辆聚集"),
    "rule:ltv_breach": ("loan-to-value above the cap", "贷款价值比超限"),
    "rule:payment_anomaly": ("abnormal payments", "异常还款"),
    "why:power_cut": ("the tracker reported a main-power-cut alarm", "设备上报主电源断电报警"),
    "why:gnss_antenna_cut": ("the tracker reported its GNSS antenna cut or shorted",
                             "设备上报定位天线被剪断或短路"),
    "why:device_removed.alarm": ("the tracker reported a removal or tamper alarm",
                                 "设备上报拆除或防拆报警"),
    "why:device_removed.silence": (
        "a wired tracker fell silent after a power-cut alarm for longer than its removal silence",
        "有线设备在断电报警后静默超过拆除静默时长"),
    "why:device_offline": ("no report for longer than the tracker's kind allows",
                           "设备未上报的时长超过该类设备的允许时长"),
    "why:long_stay": ("the car stayed in one place longer than the long-stay threshold, not at a "
                      "known place", "车辆在非常驻地点停留超过长时间停留阈值"),
    "why:risk_zone_visit": ("inside a risk zone for the dwell threshold or more, not at a known "
                            "place", "车辆在风险区域内停留达到阈值，且非常驻地点"),
    "why:left_region": ("outside the permitted region (the lender's area, else the booked "
                        "province) for longer than the threshold",
                        "车辆驶出允许区域（贷款机构设定的区域，否则为登记省份）超过阈值时长"),
    "why:night_relocation": ("the night parking place moved farther than the threshold and "
                             "stayed there several nights in a row",
                             "夜间停放地移动超过阈值距离，并连续多晚停放在新地点"),
    "why:address_mismatch": ("the confirmed night parking place lies farther than the threshold "
                             "from the declared home", "经确认的夜间停放地距申报住址超过阈值距离"),
    "why:unusual_area": ("a night away outside the area of the car's usual activity, not a day "
                         "trip", "车辆在日常活动范围之外过夜，而非当日往返"),
    "why:position_jump": ("two consecutive fixes of one tracker imply an impossible speed",
                          "同一设备相邻两次定位所需速度不可能达到"),
    "why:tracker_mismatch.apart": ("the vehicle's trackers were apart for longer than the "
                                   "threshold, with no evidence of them together",
                                   "同一车辆的两台设备相距超过阈值且持续超过阈值时长，无同处证据"),
    "why:tracker_mismatch.silent": ("a tracker reported far from where the other, silent too "
                                    "long, fell silent", "一台设备在远离另一台设备静默位置处上报，"
                                    "而另一台静默过久"),
    "why:cluster": ("several vehicles of different borrowers stayed close together for the "
                    "threshold or more", "多名借款人的车辆在近距离内共同停留达到阈值时长"),
    "why:ltv_breach": ("the loan-to-value rose above the product's cap",
                       "贷款价值比高于产品上限"),
    "why:payment_anomaly": ("one or more abnormal-payment rules flagged the loan's payments",
                            "一项或多项异常还款规则标记了该贷款的还款"),
    "ev_fixes": ("{n} fixes, {first} – {last}", "{n} 个定位点，{first} 至 {last}"),
    "ev:rule": ("rule", "规则"),
    "ev:why": ("why", "原因"),
    "ev:thresholds": ("thresholds", "阈值"),
    "ev:fixes": ("fixes", "定位点"),
    "ev:stay": ("stay", "停留"),
    "ev:alarm": ("alarm", "报警"),
    "ev:alarm_at": ("alarm at", "报警时间"),
    "ev:allowed_silence_h": ("silence allowed (h)", "允许静默（小时）"),
    "ev:area_cells": ("usual area cells", "日常活动网格"),
    "ev:at": ("at", "位置"),
    "ev:cap": ("cap", "上限"),
    "ev:category": ("category", "类别"),
    "ev:centre": ("centre", "中心"),
    "ev:declared_home": ("declared home", "申报住址"),
    "ev:from": ("from", "起"),
    "ev:hours": ("hours", "小时"),
    "ev:hours_outside": ("hours outside", "区域外小时数"),
    "ev:judged_by": ("judged by", "判定依据"),
    "ev:km": ("km", "公里"),
    "ev:kmh": ("km/h", "公里/小时"),
    "ev:last_fix": ("last fix", "最后定位"),
    "ev:ltv": ("loan-to-value", "贷款价值比"),
    "ev:minutes": ("minutes", "分钟"),
    "ev:name": ("name", "名称"),
    "ev:night_place": ("night parking place", "夜间停放地"),
    "ev:nights": ("nights", "夜数"),
    "ev:offline": ("offline", "离线"),
    "ev:other_device": ("other tracker", "另一设备"),
    "ev:other_last_fix": ("other tracker's last fix", "另一设备最后定位"),
    "ev:other_position": ("other tracker's position", "另一设备位置"),
    "ev:other_silent": ("other tracker silent", "另一设备静默"),
    "ev:payments": ("payments", "还款"),
    "ev:permitted": ("permitted region", "允许区域"),
    "ev:power_cut_at": ("power cut at", "断电时间"),
    "ev:rules": ("rules", "规则"),
    "ev:seconds": ("seconds", "秒"),
    "ev:silent_since": ("silent since", "静默起始"),
    "ev:to": ("to", "至"),
    "ev:together_since": ("together since", "聚集起始"),
    "ev:vehicles": ("vehicles", "车辆"),
    "ev:zone_id": ("zone", "区域"),
}


class Translator:
    """``t(key, **values)``: the text of ``key`` in ``lang``, formatted with ``values``;
    ``t.code(value)``: a code of the data (an alert type) in ``lang``, or as it is when the
    catalogue has no entry for it (a type added later)."""

    def __init__(self, lang: str) -> None:
        if lang not in LANGUAGES:
            raise ValueError(f"--lang: {lang!r} is not one of {', '.join(LANGUAGES)}")
        self.lang = lang
        self._index = LANGUAGES.index(lang)  # type: ignore[arg-type]

    def __call__(self, key: str, **values: object) -> str:
        text = CATALOGUE[key][self._index]
        return text.format(**values) if values else text

    def code(self, value: str, kind: str = "code") -> str:
        """``value`` of ``kind`` (``code``, an alert evidence's ``rule``, ``why`` or ``ev``
        label) in ``lang``, or as it is when the catalogue has no entry for it."""
        entry = CATALOGUE.get(f"{kind}:{value}")
        return entry[self._index] if entry else value

    def knows(self, value: str, kind: str = "code") -> bool:
        return f"{kind}:{value}" in CATALOGUE

