// batch/v1 Job and CronJob.

package types

// Job runs pods until a number of them succeed.
type Job struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Spec       JobSpec    `json:"spec"`
	Status     *JobStatus `json:"status,omitempty"`
}

// GroupVersionKind returns batch/v1 Job.
func (*Job) GroupVersionKind() GroupVersionKind {
	return GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}
}

// JobSpec is the desired state of a Job. Template.Spec.RestartPolicy must be OnFailure or Never.
type JobSpec struct {
	Parallelism             *int32          `json:"parallelism,omitempty"`
	Completions             *int32          `json:"completions,omitempty"`
	ActiveDeadlineSeconds   *int64          `json:"activeDeadlineSeconds,omitempty"`
	BackoffLimit            *int32          `json:"backoffLimit,omitempty"`
	Selector                *LabelSelector  `json:"selector,omitempty"` // set by the API server
	Template                PodTemplateSpec `json:"template"`
	TTLSecondsAfterFinished *int32          `json:"ttlSecondsAfterFinished,omitempty"`
	Suspend                 *bool           `json:"suspend,omitempty"`
}

// JobStatus is what the Job controller reports.
type JobStatus struct {
	Conditions     []JobCondition `json:"conditions,omitempty"` // Complete, Failed, Suspended, ...
	StartTime      *Time          `json:"startTime,omitempty"`
	CompletionTime *Time          `json:"completionTime,omitempty"`
	Active         int32          `json:"active,omitempty"`
	Succeeded      int32          `json:"succeeded,omitempty"`
	Failed         int32          `json:"failed,omitempty"`
	Ready          *int32         `json:"ready,omitempty"`
}

// JobCondition is one entry of a Job's status.conditions.
type JobCondition struct {
	Type               string          `json:"type"`
	Status             ConditionStatus `json:"status"`
	LastProbeTime      Time            `json:"lastProbeTime,omitempty"`
	LastTransitionTime Time            `json:"lastTransitionTime,omitempty"`
	Reason             string          `json:"reason,omitempty"`
	Message            string          `json:"message,omitempty"`
}

// JobList is a list of Jobs.
type JobList struct {
	TypeMeta
	Metadata ListMeta `json:"metadata"`
	Items    []Job    `json:"items"`
}

// ItemGroupVersionKind returns batch/v1 Job.
func (*JobList) ItemGroupVersionKind() GroupVersionKind { return (*Job)(nil).GroupVersionKind() }

// CronJob creates Jobs on a schedule.
type CronJob struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Spec       CronJobSpec    `json:"spec"`
	Status     *CronJobStatus `json:"status,omitempty"`
}

// GroupVersionKind returns batch/v1 CronJob.
func (*CronJob) GroupVersionKind() GroupVersionKind {
	return GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}
}

// CronJobSpec is the schedule and the Job to create.
type CronJobSpec struct {
	Schedule                   string          `json:"schedule"` // cron syntax, e.g. "*/5 * * * *"
	TimeZone                   *string         `json:"timeZone,omitempty"`
	StartingDeadlineSeconds    *int64          `json:"startingDeadlineSeconds,omitempty"`
	ConcurrencyPolicy          string          `json:"concurrencyPolicy,omitempty"` // Allow (default), Forbid, Replace
	Suspend                    *bool           `json:"suspend,omitempty"`
	JobTemplate                JobTemplateSpec `json:"jobTemplate"`
	SuccessfulJobsHistoryLimit *int32          `json:"successfulJobsHistoryLimit,omitempty"`
	FailedJobsHistoryLimit     *int32          `json:"failedJobsHistoryLimit,omitempty"`
}

// JobTemplateSpec is the template of the Jobs a CronJob creates.
type JobTemplateSpec struct {
	ObjectMeta `json:"metadata"`
	Spec       JobSpec `json:"spec"`
}

// CronJobStatus is what the CronJob controller reports.
type CronJobStatus struct {
	Active             []ObjectReference `json:"active,omitempty"`
	LastScheduleTime   *Time             `json:"lastScheduleTime,omitempty"`
	LastSuccessfulTime *Time             `json:"lastSuccessfulTime,omitempty"`
}

// CronJobList is a list of CronJobs.
type CronJobList struct {
	TypeMeta
	Metadata ListMeta  `json:"metadata"`
	Items    []CronJob `json:"items"`
}

// ItemGroupVersionKind returns batch/v1 CronJob.
func (*CronJobList) ItemGroupVersionKind() GroupVersionKind {
	return (*CronJob)(nil).GroupVersionKind()
}
